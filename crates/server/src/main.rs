//! `shms`: the SHMS server and its admin commands. Admin commands drive the domain services
//! directly, not the HTTP API.

mod config;
mod demo;
mod gateway;
mod hasher;
mod metrics;
mod serve;
mod wiring;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use shms_domain::Actor;
use shms_domain::user::{Email, FullName, Password, Role};

use crate::config::Config;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Smart Healthcare Management System.
#[derive(Parser)]
#[command(name = "shms", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Apply migrations, bootstrap the admin and serve HTTP (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Create an administrator account (idempotent).
    CreateAdmin {
        /// The admin's e-mail.
        #[arg(long)]
        email: String,
        /// The admin's password (12–128 characters); read from SHMS_NEW_ADMIN_PASSWORD if omitted.
        #[arg(long, env = "SHMS_NEW_ADMIN_PASSWORD", hide_env_values = true)]
        password: String,
        /// Display name.
        #[arg(long, default_value = "Administrator")]
        name: String,
    },
    /// Load the demo clinic (doctors, slots, patients, an appointment) and print the logins.
    SeedDemo,
    /// Run sql/invariants.sql; exit non-zero if any invariant is violated.
    Check,
    /// Extend every doctor's generated slots to today + horizon once (`serve` does it hourly).
    ExtendAvailability,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("shms: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command.unwrap_or(Command::Serve))) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("shms: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> Result<ExitCode, BoxError> {
    let config = Config::from_env()?;
    serve::init_tracing(config.json_logs);
    match command {
        Command::Serve => serve::serve(config).await?,
        Command::Migrate => {
            let applied = shms_postgres::run_migrations(&config.database_url).await?;
            println!(
                "migrations applied: {}",
                if applied.is_empty() {
                    "none pending".into()
                } else {
                    applied.join(", ")
                }
            );
        }
        Command::CreateAdmin {
            email,
            password,
            name,
        } => {
            let app = wiring::build(&config)?;
            let (user, created) = ensure_admin(&app, &email, &password, &name).await?;
            println!(
                "admin {} {}",
                user.email,
                if created { "created" } else { "already exists" }
            );
        }
        Command::SeedDemo => {
            shms_postgres::run_migrations(&config.database_url).await?;
            let app = wiring::build(&config)?;
            let (email, password) = config
                .bootstrap_admin
                .clone()
                .unwrap_or_else(|| ("admin@demo.shms.local".into(), demo::DEMO_PASSWORD.into()));
            let (admin, _) = ensure_admin(&app, &email, &password, "Administrator").await?;
            println!("admin login: {email}");
            let actor = Actor {
                user_id: admin.id,
                role: Role::Admin,
                session_id: None,
            };
            demo::seed(&app.services, &actor).await?;
        }
        Command::ExtendAvailability => {
            let app = wiring::build(&config)?;
            let done = app.services.availability.extend_all().await?;
            println!(
                "availability extended: {} schedule(s), {} new slot(s)",
                done.schedules, done.generated
            );
        }
        Command::Check => {
            let violations = shms_postgres::invariants::check(&config.database_url).await?;
            if violations.is_empty() {
                println!("all invariants hold");
            } else {
                for violation in &violations {
                    println!("VIOLATION {} {}", violation.violation, violation.subject);
                }
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Creates the admin account unless it exists.
async fn ensure_admin(
    app: &wiring::App,
    email: &str,
    password: &str,
    name: &str,
) -> Result<(shms_domain::user::User, bool), BoxError> {
    let password =
        Password::new(password, &[email, name]).map_err(|m| format!("admin password: {m}"))?;
    let email = Email::parse(email).map_err(|m| format!("admin e-mail: {m}"))?;
    let name = FullName::parse(name).map_err(|m| format!("admin name: {m}"))?;
    Ok(app
        .services
        .auth
        .ensure_admin(email, password, name)
        .await?)
}

pub(crate) use ensure_admin as bootstrap_admin;
