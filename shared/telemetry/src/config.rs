//! Telemetry settings, read from the standard `OTEL_*` variables (plus `RUST_LOG` and
//! `LOG_FORMAT`). The SDK reads some of these itself but silently falls back to defaults on
//! a typo; we read them once here, by the specification's rules, so that what was ignored
//! is said in the log (see [`Reader`]).

use std::fmt;

use env_config::{ConfigError, optional};

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
    "OTEL_BSP_SCHEDULE_DELAY",
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
    HttpJson,
}

impl Protocol {
    /// The port the OTLP specification gives this transport: a receiver listens for gRPC on
    /// 4317 and for HTTP on 4318.
    fn default_port(self) -> u16 {
        match self {
            Protocol::Grpc => 4317,
            Protocol::HttpProtobuf | Protocol::HttpJson => 4318,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Protocol::Grpc => "grpc",
            Protocol::HttpProtobuf => "http/protobuf",
            Protocol::HttpJson => "http/json",
        }
    }
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
    /// Where spans are sent, resolved as the OTLP exporter specification says (the
    /// traces variable as is; the general one with `/v1/traces` appended for HTTP).
    pub endpoint: String,
    pub sampler: SamplerConfig,
    pub log_format: LogFormat,
    /// `RUST_LOG`; filters the log output only, never the spans.
    pub log_filter: String,
    pub batch: BatchConfig,
    /// Settings that were ignored and why, one line each: [`crate::init`] logs them once
    /// logging is up (the specification's "warn and use the default").
    pub warnings: Vec<String>,
}

/// The batch processor's settings (`OTEL_BSP_*`). The SDK reads them too, but takes 0 for a
/// queue size (and then drops every span) and ignores a typo silently; these are the values
/// it is given (init.rs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchConfig {
    pub max_queue_size: usize,
    pub max_export_batch_size: usize,
    /// `OTEL_BSP_SCHEDULE_DELAY`, in milliseconds.
    pub scheduled_delay_ms: u64,
}

/// The OpenTelemetry variables are read the way the specification asks of every SDK
/// (sdk-environment-variables.md): enum values case-insensitively, a boolean other than
/// `true` as false, and a value that cannot be used is warned about and replaced by the
/// default, never a reason to stop. The project's own variables (`RUST_LOG`, `LOG_FORMAT`
/// and those of service-kit) stay strict: a typo there stops start-up with a line naming it.
struct Reader<'a> {
    lookup: &'a Lookup<'a>,
    warnings: Vec<String>,
}

/// Where settings come from: the environment ([`optional`]), or nothing at all (the
/// defaults).
type Lookup<'a> = dyn Fn(&'static str) -> Result<Option<String>, ConfigError> + 'a;

impl Reader<'_> {
    fn get(&self, var: &'static str) -> Result<Option<String>, ConfigError> {
        (self.lookup)(var)
    }

    fn warn(&mut self, var: &str, raw: &str, why: &str, default: &str) {
        self.warnings
            .push(format!("{var}={raw:?} ignored: {why}; using {default}"));
    }

    /// The variable, lower-cased, for the enum values.
    fn lowercase(&self, var: &'static str) -> Result<Option<(String, String)>, ConfigError> {
        Ok(self.get(var)?.map(|raw| (raw.to_ascii_lowercase(), raw)))
    }

    fn boolean(&mut self, var: &'static str) -> Result<bool, ConfigError> {
        Ok(match self.lowercase(var)? {
            None => false,
            Some((value, _)) if value == "true" => true,
            Some((value, _)) if value == "false" => false,
            Some((_, raw)) => {
                self.warn(var, &raw, "only true (in any case) means true", "false");
                false
            }
        })
    }

    fn number<T>(
        &mut self,
        var: &'static str,
        default: T,
        valid: impl Fn(&T) -> bool,
    ) -> Result<T, ConfigError>
    where
        T: std::str::FromStr + fmt::Display,
    {
        let Some(raw) = self.get(var)? else {
            return Ok(default);
        };
        match raw.parse::<T>() {
            Ok(value) if valid(&value) => Ok(value),
            _ => {
                self.warn(var, &raw, "not a valid value here", &default.to_string());
                Ok(default)
            }
        }
    }

    fn protocol(&mut self) -> Result<Protocol, ConfigError> {
        const TRACES: &str = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL";
        const GENERAL: &str = "OTEL_EXPORTER_OTLP_PROTOCOL";
        for var in [TRACES, GENERAL] {
            let Some((value, raw)) = self.lowercase(var)? else {
                continue;
            };
            match value.as_str() {
                "grpc" => return Ok(Protocol::Grpc),
                "http/protobuf" => return Ok(Protocol::HttpProtobuf),
                "http/json" => return Ok(Protocol::HttpJson),
                _ => self.warn(
                    var,
                    &raw,
                    "expected grpc, http/protobuf or http/json",
                    "the next setting or grpc",
                ),
            }
        }
        // The project's default: compose, the runner and the guide all use 4317.
        Ok(Protocol::Grpc)
    }

    fn endpoint(&mut self, protocol: Protocol) -> Result<String, ConfigError> {
        const TRACES: &str = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";
        const GENERAL: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
        let default_base = format!("http://localhost:{}", protocol.default_port());
        let http = protocol != Protocol::Grpc;
        for var in [TRACES, GENERAL] {
            let Some(raw) = self.get(var)? else {
                continue;
            };
            let url = match url::Url::parse(&raw) {
                Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => url,
                _ => {
                    self.warn(
                        var,
                        &raw,
                        "expected an http:// or https:// URL with a host",
                        "the next setting or the default",
                    );
                    continue;
                }
            };
            self.mismatch(var, &raw, &url, protocol);
            return Ok(if var == GENERAL && http {
                format!("{}/v1/traces", raw.trim_end_matches('/'))
            } else {
                raw
            });
        }
        Ok(if http {
            format!("{default_base}/v1/traces")
        } else {
            default_base
        })
    }

    /// Other languages' guides point a learner at 4318 (OTLP/HTTP), where a gRPC exporter
    /// gets nothing but failed exports; say so once, at start, naming both settings.
    fn mismatch(&mut self, var: &str, raw: &str, url: &url::Url, protocol: Protocol) {
        let Some(port) = url.port() else { return };
        let other = match protocol {
            Protocol::Grpc => Protocol::HttpProtobuf,
            Protocol::HttpProtobuf | Protocol::HttpJson => Protocol::Grpc,
        };
        if port == other.default_port() {
            self.warnings.push(format!(
                "{var}={raw:?} is the OTLP port for {}, but the exporter speaks {} \
                 (OTEL_EXPORTER_OTLP_PROTOCOL): every export will fail; use port {} \
                 or OTEL_EXPORTER_OTLP_PROTOCOL={}",
                other.name(),
                protocol.name(),
                protocol.default_port(),
                other.name(),
            ));
        }
    }

    fn sampler(&mut self) -> Result<SamplerConfig, ConfigError> {
        const VAR: &str = "OTEL_TRACES_SAMPLER";
        let ratio = |reader: &mut Self| {
            reader.number("OTEL_TRACES_SAMPLER_ARG", 1.0_f64, |r| {
                (0.0..=1.0).contains(r)
            })
        };
        let Some((value, raw)) = self.lowercase(VAR)? else {
            return Ok(SamplerConfig::ParentBasedAlwaysOn);
        };
        Ok(match value.as_str() {
            "parentbased_always_on" => SamplerConfig::ParentBasedAlwaysOn,
            "always_on" => SamplerConfig::AlwaysOn,
            "always_off" => SamplerConfig::AlwaysOff,
            "traceidratio" => SamplerConfig::TraceIdRatio(ratio(self)?),
            "parentbased_always_off" => SamplerConfig::ParentBasedAlwaysOff,
            "parentbased_traceidratio" => SamplerConfig::ParentBasedTraceIdRatio(ratio(self)?),
            _ => {
                self.warn(
                    VAR,
                    &raw,
                    "expected always_on, always_off, traceidratio, parentbased_always_on, \
                     parentbased_always_off or parentbased_traceidratio",
                    "parentbased_always_on",
                );
                SamplerConfig::ParentBasedAlwaysOn
            }
        })
    }

    fn batch(&mut self) -> Result<BatchConfig, ConfigError> {
        let max_queue_size = self.number("OTEL_BSP_MAX_QUEUE_SIZE", 2048_usize, |n| *n >= 1)?;
        let max_export_batch_size =
            self.number("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512_usize, |n| *n >= 1)?;
        let scheduled_delay_ms = self.number("OTEL_BSP_SCHEDULE_DELAY", 5000_u64, |_| true)?;
        Ok(BatchConfig {
            max_queue_size,
            // The spec caps the batch at the queue size.
            max_export_batch_size: max_export_batch_size.min(max_queue_size),
            scheduled_delay_ms,
        })
    }

    fn resource_attributes(&mut self) -> Result<Vec<(String, String)>, ConfigError> {
        const VAR: &str = "OTEL_RESOURCE_ATTRIBUTES";
        let Some(raw) = self.get(VAR)? else {
            return Ok(Vec::new());
        };
        // "The entire environment variable value SHOULD be discarded" on any error.
        Ok(parse_resource_attributes(&raw).unwrap_or_else(|why| {
            self.warn(VAR, &raw, &why, "no attributes from it");
            Vec::new()
        }))
    }
}

impl TelemetryConfig {
    /// `default_service_name` applies when neither `OTEL_SERVICE_NAME` nor a `service.name`
    /// in `OTEL_RESOURCE_ATTRIBUTES` is given.
    pub fn from_env(
        default_service_name: &str,
        service_version: &str,
    ) -> Result<Self, ConfigError> {
        Self::read(default_service_name, service_version, &optional)
    }

    /// What [`TelemetryConfig::from_env`] gives with no variable set, whatever the shell
    /// has exported: for the benchmarks and unit tests.
    pub fn defaults(service_name: &str) -> Self {
        Self::read(service_name, "0", &|_| Ok(None)).expect("the defaults are valid settings")
    }

    fn read(
        default_service_name: &str,
        service_version: &str,
        lookup: &Lookup<'_>,
    ) -> Result<Self, ConfigError> {
        let mut reader = Reader {
            lookup,
            warnings: Vec::new(),
        };
        let resource_attributes = reader.resource_attributes()?;
        let service_name = match reader.get("OTEL_SERVICE_NAME")? {
            Some(name) => name,
            None => resource_attributes
                .iter()
                .find(|(k, _)| k == "service.name")
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| default_service_name.to_owned()),
        };
        let sdk_disabled = reader.boolean("OTEL_SDK_DISABLED")?;
        let protocol = reader.protocol()?;
        let endpoint = reader.endpoint(protocol)?;
        let sampler = reader.sampler()?;
        let batch = reader.batch()?;
        let log_filter = reader
            .get("RUST_LOG")?
            .unwrap_or_else(|| DEFAULT_LOG_FILTER.to_owned());
        tracing_subscriber::EnvFilter::try_new(&log_filter)
            .map_err(|e| ConfigError::new("RUST_LOG", e.to_string()))?;
        Ok(Self {
            sdk_disabled,
            service_name,
            service_version: service_version.to_owned(),
            protocol,
            endpoint,
            sampler,
            log_format: parse_log_format(&reader)?,
            log_filter,
            batch,
            warnings: reader.warnings,
        })
    }
}

fn parse_log_format(reader: &Reader<'_>) -> Result<LogFormat, ConfigError> {
    match reader.get("LOG_FORMAT")?.as_deref() {
        None | Some("text") => Ok(LogFormat::Text),
        Some("json") => Ok(LogFormat::Json),
        Some(other) => Err(ConfigError::new(
            "LOG_FORMAT",
            format!("{other:?}: expected text or json"),
        )),
    }
}

/// `key1=value1,key2=value2`, percent-encoded values, as the resource SDK spec defines it.
fn parse_resource_attributes(raw: &str) -> Result<Vec<(String, String)>, String> {
    raw.split(',')
        .filter(|pair| !pair.trim().is_empty())
        .map(|pair| {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| format!("{pair:?} is not key=value"))?;
            let key = key.trim();
            if key.is_empty() {
                return Err(format!("{pair:?} has an empty key"));
            }
            let value = percent_decode(value.trim())
                .ok_or_else(|| format!("{pair:?} has a bad percent-encoding"))?;
            Ok((key.to_owned(), value))
        })
        .collect()
}

/// The value with its `%XX` escapes decoded, by the same decoder as the baggage's;
/// `None` when a `%` is not followed by two hex digits (which that decoder would keep as
/// they are) or the bytes are not UTF-8.
fn percent_decode(value: &str) -> Option<String> {
    let well_formed = value
        .split('%')
        .skip(1)
        .all(|s| s.len() >= 2 && s.as_bytes()[..2].iter().all(u8::is_ascii_hexdigit));
    if !well_formed {
        return None;
    }
    percent_encoding::percent_decode_str(value)
        .decode_utf8()
        .ok()
        .map(|decoded| decoded.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(vars: &[(&'static str, &str)]) -> TelemetryConfig {
        let lookup = |var: &'static str| {
            Ok(vars
                .iter()
                .find(|(k, _)| *k == var)
                .map(|(_, v)| (*v).to_owned()))
        };
        TelemetryConfig::read("test", "0", &lookup).expect("OTEL_* never stops start-up")
    }

    #[test]
    fn endpoints_resolve_as_the_exporter_specification_says() {
        assert_eq!(read(&[]).endpoint, "http://localhost:4317");
        let http = ("OTEL_EXPORTER_OTLP_PROTOCOL", "HTTP/Protobuf");
        assert_eq!(read(&[http]).endpoint, "http://localhost:4318/v1/traces");
        assert_eq!(
            read(&[http, ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://jaeger:4318/")]).endpoint,
            "http://jaeger:4318/v1/traces"
        );
        let traces = (
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "http://jaeger:4318/custom",
        );
        assert_eq!(read(&[http, traces]).endpoint, "http://jaeger:4318/custom");
        let bad = read(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "jaeger:4317")]);
        assert_eq!(
            (bad.endpoint.as_str(), bad.warnings.len()),
            ("http://localhost:4317", 1)
        );
    }

    #[test]
    fn the_defaults_are_what_no_variable_gives() {
        assert_eq!(TelemetryConfig::defaults("test"), read(&[]));
        assert!(read(&[]).warnings.is_empty());
    }

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
        assert!(parse_resource_attributes("novalue").is_err());
        assert!(parse_resource_attributes("k=%zz").is_err());
    }
}
