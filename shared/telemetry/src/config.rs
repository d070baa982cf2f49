//! Telemetry settings, read from the standard `OTEL_*` variables (plus `RUST_LOG` and
//! `LOG_FORMAT`). The SDK reads some of these itself but silently falls back to defaults on
//! a typo; we parse them once here so a malformed value stops start-up with a line naming it.

use std::{env, fmt};

/// A setting that is missing or malformed. Displays as one line naming the variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub var: &'static str,
    pub reason: String,
}

impl ConfigError {
    pub fn new(var: &'static str, reason: impl Into<String>) -> Self {
        Self {
            var,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid configuration: {}: {}", self.var, self.reason)
    }
}

impl std::error::Error for ConfigError {}

/// Reads an optional variable; set-but-empty counts as unset, as the OpenTelemetry spec says.
pub fn optional(var: &'static str) -> Result<Option<String>, ConfigError> {
    match env::var(var) {
        Ok(value) if value.trim().is_empty() => Ok(None),
        Ok(value) => Ok(Some(value.trim().to_owned())),
        Err(env::VarError::NotPresent) => Ok(None),
        Err(env::VarError::NotUnicode(_)) => Err(ConfigError::new(var, "not valid UTF-8")),
    }
}

pub fn required(var: &'static str) -> Result<String, ConfigError> {
    optional(var)?.ok_or_else(|| ConfigError::new(var, "is required but not set"))
}

/// Reads and parses an optional variable, naming it and the bad value on failure.
pub fn parsed<T>(var: &'static str, default: T) -> Result<T, ConfigError>
where
    T: std::str::FromStr,
    T::Err: fmt::Display,
{
    match optional(var)? {
        None => Ok(default),
        Some(raw) => raw
            .parse()
            .map_err(|e| ConfigError::new(var, format!("{raw:?}: {e}"))),
    }
}

/// [`parsed`], refusing values below 1 (sizes and counts where 0 would stop all work).
pub fn at_least_one<T>(var: &'static str, default: T) -> Result<T, ConfigError>
where
    T: std::str::FromStr + PartialOrd + From<u8>,
    T::Err: fmt::Display,
{
    let value = parsed(var, default)?;
    if value < T::from(1) {
        return Err(ConfigError::new(var, "must be at least 1"));
    }
    Ok(value)
}

/// Every variable [`TelemetryConfig::from_env`] reads. The exporter and batch processor
/// also read `OTEL_EXPORTER_OTLP_*` (headers, timeout, compression) and `OTEL_BSP_*`
/// themselves: see [`SDK_PREFIXES`].
pub const ENV_VARS: &[&str] = &[
    "OTEL_SDK_DISABLED",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
    "OTEL_BSP_MAX_QUEUE_SIZE",
    "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
    "RUST_LOG",
    "LOG_FORMAT",
];

/// Variable families the OpenTelemetry SDK reads by itself.
pub const SDK_PREFIXES: &[&str] = &["OTEL_EXPORTER_OTLP_", "OTEL_BSP_"];

/// The SDK announces itself at INFO; its warnings (failed exports) still show.
pub const DEFAULT_LOG_FILTER: &str = "info,opentelemetry=warn,opentelemetry_sdk=warn";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Grpc,
    HttpProtobuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// `OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG`, as the SDK configuration spec names them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SamplerConfig {
    AlwaysOn,
    AlwaysOff,
    TraceIdRatio(f64),
    ParentBasedAlwaysOn,
    ParentBasedAlwaysOff,
    ParentBasedTraceIdRatio(f64),
}

#[derive(Debug, Clone, PartialEq)]
pub struct TelemetryConfig {
    /// `OTEL_SDK_DISABLED=true`: no provider, no export; logs still work.
    pub sdk_disabled: bool,
    pub service_name: String,
    pub service_version: String,
    pub protocol: Protocol,
    pub sampler: SamplerConfig,
    pub log_format: LogFormat,
    /// `RUST_LOG`; filters the log output only, never the spans.
    pub log_filter: String,
    pub batch: BatchConfig,
}

/// The batch processor's sizes (`OTEL_BSP_*`), which the SDK also reads; the exporter needs
/// them too, to bound what it keeps through a collector outage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchConfig {
    pub max_queue_size: usize,
    pub max_export_batch_size: usize,
}

impl BatchConfig {
    fn from_env() -> Result<Self, ConfigError> {
        let max_queue_size = at_least_one("OTEL_BSP_MAX_QUEUE_SIZE", 2048_usize)?;
        let max_export_batch_size = at_least_one("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512_usize)?;
        Ok(Self {
            max_queue_size,
            // The spec caps the batch at the queue size.
            max_export_batch_size: max_export_batch_size.min(max_queue_size),
        })
    }
}

impl TelemetryConfig {
    /// `default_service_name` applies when neither `OTEL_SERVICE_NAME` nor a `service.name`
    /// in `OTEL_RESOURCE_ATTRIBUTES` is given.
    pub fn from_env(
        default_service_name: &str,
        service_version: &str,
    ) -> Result<Self, ConfigError> {
        let resource_attributes = optional("OTEL_RESOURCE_ATTRIBUTES")?
            .map(|raw| parse_resource_attributes(&raw))
            .transpose()?
            .unwrap_or_default();
        let service_name = match optional("OTEL_SERVICE_NAME")? {
            Some(name) => name,
            None => resource_attributes
                .iter()
                .find(|(k, _)| k == "service.name")
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| default_service_name.to_owned()),
        };
        Ok(Self {
            sdk_disabled: parse_bool("OTEL_SDK_DISABLED")?,
            service_name,
            service_version: service_version.to_owned(),
            protocol: parse_protocol()?,
            sampler: parse_sampler()?,
            log_format: parse_log_format()?,
            log_filter: optional("RUST_LOG")?.unwrap_or_else(|| DEFAULT_LOG_FILTER.to_owned()),
            batch: BatchConfig::from_env()?,
        })
        .and_then(|config| {
            validate_endpoint("OTEL_EXPORTER_OTLP_ENDPOINT")?;
            validate_endpoint("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")?;
            tracing_subscriber::EnvFilter::try_new(&config.log_filter)
                .map_err(|e| ConfigError::new("RUST_LOG", e.to_string()))?;
            Ok(config)
        })
    }
}

fn parse_bool(var: &'static str) -> Result<bool, ConfigError> {
    match optional(var)?.map(|v| v.to_ascii_lowercase()).as_deref() {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(ConfigError::new(
            var,
            format!("{other:?}: expected true or false"),
        )),
    }
}

fn parse_protocol() -> Result<Protocol, ConfigError> {
    const VAR: &str = "OTEL_EXPORTER_OTLP_PROTOCOL";
    let traces = optional("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")?;
    let (var, value) = match traces {
        Some(v) => ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", Some(v)),
        None => (VAR, optional(VAR)?),
    };
    match value.as_deref() {
        None | Some("grpc") => Ok(Protocol::Grpc),
        Some("http/protobuf") => Ok(Protocol::HttpProtobuf),
        Some(other) => Err(ConfigError::new(
            var,
            format!("{other:?}: expected grpc or http/protobuf"),
        )),
    }
}

fn parse_sampler() -> Result<SamplerConfig, ConfigError> {
    const VAR: &str = "OTEL_TRACES_SAMPLER";
    let ratio = || -> Result<f64, ConfigError> {
        const ARG: &str = "OTEL_TRACES_SAMPLER_ARG";
        let ratio: f64 = parsed(ARG, 1.0)?;
        if (0.0..=1.0).contains(&ratio) {
            Ok(ratio)
        } else {
            Err(ConfigError::new(
                ARG,
                format!("{ratio}: expected a ratio between 0 and 1"),
            ))
        }
    };
    Ok(match optional(VAR)?.as_deref() {
        None | Some("parentbased_always_on") => SamplerConfig::ParentBasedAlwaysOn,
        Some("always_on") => SamplerConfig::AlwaysOn,
        Some("always_off") => SamplerConfig::AlwaysOff,
        Some("traceidratio") => SamplerConfig::TraceIdRatio(ratio()?),
        Some("parentbased_always_off") => SamplerConfig::ParentBasedAlwaysOff,
        Some("parentbased_traceidratio") => SamplerConfig::ParentBasedTraceIdRatio(ratio()?),
        Some(other) => {
            return Err(ConfigError::new(
                VAR,
                format!(
                    "{other:?}: expected one of always_on, always_off, traceidratio, \
                     parentbased_always_on, parentbased_always_off, parentbased_traceidratio"
                ),
            ));
        }
    })
}

fn parse_log_format() -> Result<LogFormat, ConfigError> {
    match optional("LOG_FORMAT")?.as_deref() {
        None | Some("text") => Ok(LogFormat::Text),
        Some("json") => Ok(LogFormat::Json),
        Some(other) => Err(ConfigError::new(
            "LOG_FORMAT",
            format!("{other:?}: expected text or json"),
        )),
    }
}

fn validate_endpoint(var: &'static str) -> Result<(), ConfigError> {
    let Some(raw) = optional(var)? else {
        return Ok(());
    };
    let url = url::Url::parse(&raw).map_err(|e| ConfigError::new(var, format!("{raw:?}: {e}")))?;
    match url.scheme() {
        "http" | "https" if url.host().is_some() => Ok(()),
        _ => Err(ConfigError::new(
            var,
            format!("{raw:?}: expected an http:// or https:// URL with a host"),
        )),
    }
}

/// `key1=value1,key2=value2`, percent-encoded values, as the resource SDK spec defines it.
fn parse_resource_attributes(raw: &str) -> Result<Vec<(String, String)>, ConfigError> {
    const VAR: &str = "OTEL_RESOURCE_ATTRIBUTES";
    raw.split(',')
        .filter(|pair| !pair.trim().is_empty())
        .map(|pair| {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| ConfigError::new(VAR, format!("{pair:?}: expected key=value")))?;
            let key = key.trim();
            if key.is_empty() {
                return Err(ConfigError::new(VAR, format!("{pair:?}: empty key")));
            }
            let value = percent_decode(value.trim())
                .ok_or_else(|| ConfigError::new(VAR, format!("{pair:?}: bad percent-encoding")))?;
            Ok((key.to_owned(), value))
        })
        .collect()
}

fn percent_decode(value: &str) -> Option<String> {
    url::form_urlencoded::parse(format!("v={}", value.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .filter(|_| {
            !value.contains('%')
                || value
                    .split('%')
                    .skip(1)
                    .all(|s| s.len() >= 2 && s.as_bytes()[..2].iter().all(u8::is_ascii_hexdigit))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_attributes_are_split_and_decoded() {
        let attrs =
            parse_resource_attributes("deployment.environment=workshop,team=a%20b").unwrap();
        assert_eq!(
            attrs,
            vec![
                ("deployment.environment".to_owned(), "workshop".to_owned()),
                ("team".to_owned(), "a b".to_owned())
            ]
        );
    }

    #[test]
    fn resource_attributes_without_equals_are_refused() {
        let err = parse_resource_attributes("novalue").unwrap_err();
        assert_eq!(err.var, "OTEL_RESOURCE_ATTRIBUTES");
        assert!(parse_resource_attributes("k=%zz").is_err());
    }
}
