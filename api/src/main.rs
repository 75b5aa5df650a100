//! `chat-api`: serve the API, apply migrations, create an administrator, or print the OpenAPI
//! document.

use std::io::BufRead;
use std::process::ExitCode;

use chat_api::config::Config;
use chat_api::db::Db;
use chat_api::domain::{EmailAddress, Password, Username};
use chat_api::{openapi, services, startup, telemetry};

/// mimalloc rather than glibc's malloc: frames are allocated on the message writer's thread and
/// freed on the HTTP workers', and glibc makes every such free take the writer's arena lock.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const USAGE: &str = "\
usage: chat-api [COMMAND]

commands:
  serve                 run the server (the default)
  migrate               apply pending database migrations and exit
  createsuperuser --username NAME --email EMAIL
                        create an administrator; the password is read from
                        CHAT_SUPERUSER_PASSWORD or else from the first line of stdin
  openapi [--json]      print the OpenAPI document (YAML unless --json)

Configuration comes from environment variables (and .env); see README.md.";

fn main() -> ExitCode {
    owner_only_files();
    let _ = dotenvy::dotenv();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        None | Some("serve") => serve(),
        Some("migrate") => migrate(),
        Some("createsuperuser") => create_superuser(&args[1..]),
        Some("openapi") => print_openapi(args.get(1).map(String::as_str) == Some("--json")),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(anyhow::anyhow!("unknown command {other:?}\n\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("chat-api: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Whatever umask the server inherits, what it creates is its owner's alone: folders 0700,
/// files 0600 (the SQLite database, the signing key, the mail outbox with live reset links).
fn owner_only_files() {
    // SAFETY: umask only sets the process's file mode mask; it cannot fail and touches no memory.
    unsafe {
        libc::umask(0o077);
    }
}

fn load_config() -> anyhow::Result<Config> {
    let config = Config::from_env()?;
    telemetry::init(&config.log_format);
    // A data folder made by an earlier version (or by hand) may be open to others: close it.
    if config.data_dir.is_dir() {
        use std::os::unix::fs::PermissionsExt;
        if let Err(error) = std::fs::set_permissions(&config.data_dir, std::fs::Permissions::from_mode(0o700)) {
            tracing::warn!(error = %error, dir = %config.data_dir.display(), "could not make the data folder owner-only");
        }
    }
    Ok(config)
}

fn serve() -> anyhow::Result<()> {
    let config = load_config()?;
    actix_web::rt::System::new().block_on(startup::run(config))
}

fn migrate() -> anyhow::Result<()> {
    let config = load_config()?;
    Db::connect(&config.database_url)?;
    println!("migrations applied");
    Ok(())
}

fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).map(String::as_str)
}

fn create_superuser(args: &[String]) -> anyhow::Result<()> {
    let config = load_config()?;
    let username = flag(args, "--username").ok_or_else(|| anyhow::anyhow!("--username is required\n\n{USAGE}"))?;
    let email = flag(args, "--email").ok_or_else(|| anyhow::anyhow!("--email is required\n\n{USAGE}"))?;
    let username = Username::parse(username).map_err(|m| anyhow::anyhow!("username {m}"))?;
    let email = EmailAddress::parse(email).map_err(|m| anyhow::anyhow!("email: {m}"))?;
    let password = match std::env::var("CHAT_SUPERUSER_PASSWORD") {
        Ok(password) => password,
        Err(_) => {
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            line.trim_end_matches(['\r', '\n']).to_owned()
        }
    };
    let password = Password::parse(&password).map_err(|m| anyhow::anyhow!("password {m}"))?;
    let db = Db::connect(&config.database_url)?;
    let mut conn = db.get().map_err(|e| anyhow::anyhow!("{e}"))?;
    let id = services::accounts::create_superuser(&mut conn, &username, &email, &password, config.bcrypt_cost)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("superuser {} created with id {id}", username.as_str());
    Ok(())
}

fn print_openapi(json: bool) -> anyhow::Result<()> {
    let document = openapi::document();
    let text = if json { document.to_pretty_json()? } else { document.to_yaml()? };
    print!("{text}");
    Ok(())
}
