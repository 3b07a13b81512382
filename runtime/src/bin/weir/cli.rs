//! `weir connectors ...`: manage a running worker through its REST API.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Value, json};
use weir_runtime::ManifestFile;

#[derive(Debug, Args)]
pub(crate) struct ConnectorsArgs {
    /// The worker's REST API.
    #[arg(long, global = true, env = "WEIR_REST_URL", default_value = "http://127.0.0.1:8083")]
    url: String,
    /// `table` (readable) or `json` (the API's answer).
    #[arg(long, short, global = true, value_enum, default_value_t = Output::Table)]
    output: Output,
    #[command(subcommand)]
    command: ConnectorsCommand,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    Table,
    Json,
}

#[derive(Debug, Subcommand)]
enum ConnectorsCommand {
    /// Every connector with its state.
    List,
    /// A connector's and its tasks' states.
    Status {
        name: String,
    },
    /// A connector's config.
    Get {
        name: String,
    },
    /// Create the connectors of a manifest (fails if one exists).
    Create {
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
    },
    /// Create or update the connectors of a manifest.
    Apply {
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
    },
    Pause {
        name: String,
    },
    Resume {
        name: String,
    },
    Stop {
        name: String,
    },
    Restart {
        name: String,
        #[arg(long)]
        include_tasks: bool,
        #[arg(long)]
        only_failed: bool,
    },
    Delete {
        name: String,
    },
    /// A connector's committed offsets.
    Offsets {
        name: String,
    },
}

struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    /// Send a request; an error answer becomes an error carrying the API's message.
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base.trim_end_matches('/'));
        let mut request = self.http.request(method.clone(), &url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.with_context(|| format!("while calling {method} {url}"))?;
        let status = response.status();
        let text = response.text().await.with_context(|| format!("while reading the answer of {method} {url}"))?;
        let value: Value =
            if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
        if status.is_success() {
            Ok(value)
        } else {
            let message =
                value.get("message").and_then(Value::as_str).map(str::to_owned).unwrap_or_else(|| value.to_string());
            anyhow::bail!("{} ({status})", message)
        }
    }
}

pub(crate) async fn run(args: ConnectorsArgs) -> anyhow::Result<ExitCode> {
    let client = Client { http: reqwest::Client::new(), base: args.url.clone() };
    let json_output = args.output == Output::Json;
    use reqwest::Method;
    let print = |value: &Value| println!("{}", serde_json::to_string_pretty(value).unwrap_or_default());
    match args.command {
        ConnectorsCommand::List => {
            let value = client.call(Method::GET, "/connectors?expand=status", None).await?;
            if json_output {
                print(&value);
            } else {
                println!("{:<24} {:<6} {:<11} TASKS", "NAME", "TYPE", "STATE");
                for (name, entry) in value.as_object().into_iter().flatten() {
                    let status = &entry["status"];
                    println!(
                        "{:<24} {:<6} {:<11} {}",
                        name,
                        text(&status["type"]),
                        text(&status["connector"]["state"]),
                        task_states(status)
                    );
                }
            }
        }
        ConnectorsCommand::Status { name } => {
            let status = client.call(Method::GET, &format!("/connectors/{name}/status"), None).await?;
            if json_output {
                print(&status);
            } else {
                println!(
                    "{} ({}): {} on {}",
                    name,
                    text(&status["type"]),
                    text(&status["connector"]["state"]),
                    text(&status["connector"]["worker_id"])
                );
                if let Some(trace) = status["connector"]["trace"].as_str() {
                    println!("  trace: {trace}");
                }
                println!("{:<6} {:<11} {:<10} TRACE", "TASK", "STATE", "WORKER");
                for task in status["tasks"].as_array().into_iter().flatten() {
                    println!(
                        "{:<6} {:<11} {:<10} {}",
                        task["id"],
                        text(&task["state"]),
                        text(&task["worker_id"]),
                        task["trace"].as_str().unwrap_or("")
                    );
                }
            }
        }
        ConnectorsCommand::Get { name } => {
            let config = client.call(Method::GET, &format!("/connectors/{name}/config"), None).await?;
            if json_output {
                print(&config);
            } else {
                for (key, value) in config.as_object().into_iter().flatten() {
                    println!("{key:<36} {}", text(value));
                }
            }
        }
        ConnectorsCommand::Create { file } => {
            let manifest = ManifestFile::load(&file).map_err(|error| anyhow::anyhow!("{error}"))?;
            for definition in &manifest.definitions {
                let body = json!({ "name": definition.name, "config": definition.to_flat() });
                let info = client.call(Method::POST, "/connectors", Some(body)).await?;
                if json_output { print(&info) } else { println!("created {}", definition.name) }
            }
        }
        ConnectorsCommand::Apply { file } => {
            let manifest = ManifestFile::load(&file).map_err(|error| anyhow::anyhow!("{error}"))?;
            for definition in &manifest.definitions {
                let path = format!("/connectors/{}/config", definition.name);
                let info = client.call(Method::PUT, &path, Some(Value::Object(definition.to_flat()))).await?;
                if json_output { print(&info) } else { println!("applied {}", definition.name) }
            }
        }
        ConnectorsCommand::Pause { name } => {
            lifecycle(&client, Method::PUT, &format!("/connectors/{name}/pause"), "paused", &name).await?
        }
        ConnectorsCommand::Resume { name } => {
            lifecycle(&client, Method::PUT, &format!("/connectors/{name}/resume"), "resumed", &name).await?
        }
        ConnectorsCommand::Stop { name } => {
            lifecycle(&client, Method::PUT, &format!("/connectors/{name}/stop"), "stopped", &name).await?
        }
        ConnectorsCommand::Delete { name } => {
            lifecycle(&client, Method::DELETE, &format!("/connectors/{name}"), "deleted", &name).await?
        }
        ConnectorsCommand::Restart { name, include_tasks, only_failed } => {
            let path = format!("/connectors/{name}/restart?includeTasks={include_tasks}&onlyFailed={only_failed}");
            lifecycle(&client, Method::POST, &path, "restarted", &name).await?;
        }
        ConnectorsCommand::Offsets { name } => {
            let offsets = client.call(Method::GET, &format!("/connectors/{name}/offsets"), None).await?;
            if json_output {
                print(&offsets);
            } else {
                println!("{:<48} OFFSET", "PARTITION");
                for entry in offsets["offsets"].as_array().into_iter().flatten() {
                    println!("{:<48} {}", entry["partition"].to_string(), entry["offset"]);
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn lifecycle(client: &Client, method: reqwest::Method, path: &str, done: &str, name: &str) -> anyhow::Result<()> {
    client.call(method, path, None).await?;
    println!("{done} {name}");
    Ok(())
}

fn text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn task_states(status: &Value) -> String {
    let states: Vec<String> =
        status["tasks"].as_array().into_iter().flatten().map(|task| text(&task["state"])).collect();
    if states.is_empty() { "-".into() } else { states.join(",") }
}
