-- The oracle test's tables (tests/all/oracle.rs): every common type, with rows the snapshot reads.
CREATE EXTENSION IF NOT EXISTS hstore;
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE scalars (
    id int4 PRIMARY KEY,
    b bool, i2 int2, i8 int8, n numeric(12, 3), nu numeric, r real, d double precision,
    t text, vc varchar(20), ch char(5), by bytea, u uuid, j json, jb jsonb, m money,
    e mood, ip inet, cid cidr, mac macaddr, bt bit(4), vb varbit(8), x xml
);
CREATE TABLE temporals (
    id int4 PRIMARY KEY,
    dt date, tm time, tm3 time(3), tmtz timetz, ts timestamp, ts3 timestamp(3), ts0 timestamp(0),
    tstz timestamptz, iv interval
);
CREATE TABLE collections (
    id int4 PRIMARY KEY,
    ia int4[], ba int8[], ta text[], va varchar(10)[], bo bool[], ua uuid[], fa float8[], da date[], h hstore
);
CREATE TABLE toasted (id int4 PRIMARY KEY, counter int4, body text);
CREATE TABLE keyless (a int4, b text);
CREATE TABLE composite_key (region text, id int8, note text, PRIMARY KEY (region, id));
CREATE TABLE oracle_end (id int4 PRIMARY KEY);

INSERT INTO scalars VALUES
    (1, true, -32768, 9223372036854775807, 123456789.125, 3.14159265358979323846, 1.5, -2.25e-10,
     'tab	quote" backslash\ é', 'varchar', 'ab', '\x00ff10', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
     '{"b": 1,  "a" : [1, 2]}', '{"b": 1, "a": [1, 2]}', 1234.56, 'happy', '192.168.0.1/24', '10.0.0.0/8',
     '08:00:2b:01:02:03', B'1010', B'101', '<a>x</a>'),
    (2, false, 0, -9007199254740993, -0.001, 'NaN', 'Infinity', '-Infinity', '', NULL, 'abcde', '\x', NULL,
     'null', '[]', -0.5, 'sad', '::1', '2001:db8::/32', NULL, B'0000', B'', NULL),
    (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
     NULL, NULL, NULL, NULL, NULL, NULL);
INSERT INTO temporals VALUES
    (1, '2024-02-29', '13:14:15.123456', '13:14:15.123', '13:14:15.5+02:30', '2024-02-29 13:14:15.123456',
     '2024-02-29 13:14:15.123', '2024-02-29 13:14:15', '2024-02-29 13:14:15.123456+01', '1 year 2 mons 3 days 04:05:06.789'),
    (2, '1969-12-31', '00:00:00', '23:59:59.999', '00:00:00+00', '1969-12-31 23:59:59.5', '1900-01-01 00:00:00',
     '2000-01-01 00:00:00', '1970-01-01 00:00:00+00', '-1 days -00:00:01'),
    (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
    (7, 'infinity', '00:00:00', '00:00:00', '00:00:00+00', 'infinity', '-infinity', 'infinity', 'infinity', '0 seconds'),
    (8, '-infinity', '00:00:00', '00:00:00', '00:00:00+00', '-infinity', 'infinity', '-infinity', '-infinity', '0 seconds');
INSERT INTO collections VALUES
    (1, '{1,NULL,3}', '{9007199254740993}', '{"a b","c\"d",NULL}', '{x,y}', '{t,f}',
     '{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}', '{1.5,-0.25}', '{2024-01-02}', 'a=>1, "b c"=>NULL'),
    (2, '{}', NULL, '{}', NULL, NULL, NULL, NULL, NULL, '');
INSERT INTO toasted SELECT 1, 0, string_agg(md5(g::text), '') FROM generate_series(1, 400) g;
INSERT INTO keyless VALUES (1, 'one');
INSERT INTO composite_key VALUES ('eu', 1, 'first');
