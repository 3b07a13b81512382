-- The oracle test's changes (tests/all/oracle.rs), made once both sides are capturing.
INSERT INTO scalars (id, b, n, t, j, jb, m) VALUES (10, true, 0.5, 'new', '{"k":"v"}', '{"k": "v"}', 0);
UPDATE scalars SET t = 'changed', i2 = 7 WHERE id = 1;
UPDATE temporals SET ts = '2030-06-01 12:00:00.000001', iv = '-3 hours' WHERE id = 1;
INSERT INTO temporals VALUES (4, '0001-01-01', '24:00:00', '00:00:00.001', '23:59:59-11', 'infinity',
    'infinity', '-infinity', '2262-04-11 23:47:16.854775+00', '178000000 years');
INSERT INTO temporals VALUES (5, 'infinity', '00:00:00', '00:00:00', '00:00:00+00', '-infinity',
    '-infinity', 'infinity', 'infinity', '0 seconds'),
    (6, '-infinity', '12:00:00', '12:00:00', '12:00:00+00', 'infinity', 'infinity', '-infinity',
    '-infinity', '1 day');
UPDATE collections SET ia = '{4,5}', h = 'k=>v' WHERE id = 1;
UPDATE toasted SET counter = counter + 1 WHERE id = 1;
BEGIN;
INSERT INTO keyless VALUES (2, 'two');
UPDATE composite_key SET note = 'second' WHERE region = 'eu';
DELETE FROM scalars WHERE id = 2;
COMMIT;
UPDATE composite_key SET id = 2 WHERE region = 'eu';
DELETE FROM toasted WHERE id = 1;
TRUNCATE keyless;
INSERT INTO oracle_end VALUES (1);
