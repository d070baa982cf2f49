//! Telemetry settings. The OpenTelemetry SDK and the OTLP exporter read the standard
//! `OTEL_*` variables themselves (init.rs lets them): the sampler, the batch sizes, the
//! endpoint, the resource. This module reads only what is ours to decide (`OTEL_SDK_DISABLED`,
//! which the Rust SDK does not read, the transport, `RUST_LOG`, `LOG_FORMAT`, `TRACING_CONTEXT_ACTIVATION`), and is the
//! thin layer for the values the SDK 0.32 reads otherwise than the specification says
//! (sdk-environment-variables.md: enum values in any case, an unusable value warned about
//! and replaced by the default, never a reason to stop). One case each, one test each:
//!
//! | Variable | The SDK | Here |
//! |---|---|---|
//! | `OTEL_TRACES_SAMPLER` | exact lower case only: `ALWAYS_OFF` samples everything | any case |
//! | `OTEL_TRACES_SAMPLER_ARG` | any number: `2`, `-1`, `NaN` | warned, 1.0 |
//! | `OTEL_BSP_MAX_QUEUE_SIZE`, `_MAX_EXPORT_BATCH_SIZE` | `0` taken: every span dropped | warned, default |
//! | `OTEL_BSP_*` | not a number: default, silently | warned, default |
//! | `OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT` | not a URL: gRPC fails at start | warned, next or default |
//! | `OTEL_RESOURCE_ATTRIBUTES` | no percent-decoding; a bad pair dropped alone | decoded; a bad value discarded whole, warned |
//!
//! Every correction is a value handed to the SDK's builders ([`Corrections`]); where there
//! is none, the SDK's own reading stands.

use std::fmt;

use env_config::{ConfigError, optional};

/// Every variable this module reads. The SDK and the exporter read more `OTEL_*` themselves
/// (headers, timeouts, compression, `OTEL_SERVICE_NAME`): see [`SDK_PREFIXES`].
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
    "OTEL_BSP_EXPORT_TIMEOUT",
    "RUST_LOG",
    "LOG_FORMAT",
    "TRACING_CONTEXT_ACTIVATION",
];

/// Variable families the OpenTelemetry SDK reads by itself.
pub const SDK_PREFIXES: &[&str] = &["OTEL_EXPORTER_OTLP_", "OTEL_BSP_"];

/// The SDK announces itself at INFO; its warnings (failed exports) still show.
pub const DEFAULT_LOG_FILTER: &str = "info,opentelemetry=warn,opentelemetry_sdk=warn";

/// The OTLP transport. The exporter can pick it from `OTEL_EXPORTER_OTLP_PROTOCOL` itself,
/// but only through a builder that takes no retry policy, and with HTTP JSON as its default
/// when every transport is compiled in; compose, the runner and the guide use gRPC on 4317.
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

/// A sampler named by `OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SamplerConfig {
    AlwaysOn,
    AlwaysOff,
    TraceIdRatio(f64),
    ParentBasedAlwaysOn,
    ParentBasedAlwaysOff,
    ParentBasedTraceIdRatio(f64),
}

/// Values handed to the SDK's builders in place of what it would read from the environment
/// itself; `None` leaves a setting to the SDK.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Corrections {
    pub sampler: Option<SamplerConfig>,
    pub max_queue_size: Option<usize>,
    pub max_export_batch_size: Option<usize>,
    pub endpoint: Option<String>,
    /// The resource's attributes, decoded, or none at all when the value was unusable.
    pub resource_attributes: Option<Vec<(String, String)>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TelemetryConfig {
    /// `OTEL_SDK_DISABLED=true`: no provider, no export; logs still work.
    pub sdk_disabled: bool,
    /// `OTEL_SERVICE_NAME`, else `service.name` in `OTEL_RESOURCE_ATTRIBUTES`, else the
    /// binary's (where the SDK would say `unknown_service`).
    pub service_name: String,
    pub service_version: String,
    pub protocol: Protocol,
    pub corrections: Corrections,
    pub log_format: LogFormat,
    /// `RUST_LOG`; filters the log output only, never the spans.
    pub log_filter: String,
    /// `TRACING_CONTEXT_ACTIVATION=on`: entering a `tracing` span also makes its context
    /// OpenTelemetry's `Context::current()` (tracing-opentelemetry's default; off here, as
    /// init.rs says why, and exercise 14 shows what that changes).
    pub context_activation: bool,
    /// Settings that were ignored and why, one line each: [`crate::init`] logs them once
    /// logging is up.
    pub warnings: Vec<String>,
}

/// `OTEL_RESOURCE_ATTRIBUTES`' pairs, in order.
type Attributes = Vec<(String, String)>;

/// Where settings come from: the environment ([`optional`]), or a list in the tests.
type Lookup<'a> = dyn Fn(&'static str) -> Result<Option<String>, ConfigError> + 'a;

struct Reader<'a> {
    lookup: &'a Lookup<'a>,
    warnings: Vec<String>,
}

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

    fn sdk_disabled(&mut self) -> Result<bool, ConfigError> {
        const VAR: &str = "OTEL_SDK_DISABLED";
        Ok(match self.lowercase(VAR)? {
            None => false,
            Some((value, _)) if value == "true" => true,
            Some((value, _)) if value == "false" => false,
            Some((_, raw)) => {
                self.warn(VAR, &raw, "only true (in any case) means true", "false");
                false
            }
        })
    }

    /// `Some(default)` when the variable is set but unusable (warned), `None` when the
    /// SDK's own reading stands.
    fn number<T>(
        &mut self,
        var: &'static str,
        default: T,
        valid: impl Fn(&T) -> bool,
    ) -> Result<Option<T>, ConfigError>
    where
        T: std::str::FromStr + fmt::Display,
    {
        let Some(raw) = self.get(var)? else {
            return Ok(None);
        };
        match raw.trim().parse::<T>() {
            Ok(value) if valid(&value) => Ok(None),
            _ => {
                self.warn(var, &raw, "not a valid value here", &default.to_string());
                Ok(Some(default))
            }
        }
    }

    fn protocol(&mut self) -> Result<Protocol, ConfigError> {
        for var in [
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ] {
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
        Ok(Protocol::Grpc)
    }

    /// The exporter reads the endpoint variables itself; an unusable one is corrected to
    /// the next setting or the default, resolved as the exporter would.
    fn endpoint(&mut self, protocol: Protocol) -> Result<Option<String>, ConfigError> {
        const TRACES: &str = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";
        const GENERAL: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
        let http = protocol != Protocol::Grpc;
        let mut skipped = false;
        for var in [TRACES, GENERAL] {
            let Some(raw) = self.get(var)? else {
                continue;
            };
            match url::Url::parse(&raw) {
                Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
                    self.mismatch(var, &raw, &url, protocol);
                    return Ok(skipped.then(|| match var {
                        GENERAL if http => format!("{}/v1/traces", raw.trim_end_matches('/')),
                        _ => raw,
                    }));
                }
                _ => {
                    skipped = true;
                    self.warn(
                        var,
                        &raw,
                        "expected an http:// or https:// URL with a host",
                        "the next setting or the default",
                    );
                }
            }
        }
        let default = format!("http://localhost:{}", protocol.default_port());
        Ok(skipped.then(|| {
            if http {
                format!("{default}/v1/traces")
            } else {
                default
            }
        }))
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

    /// The SDK matches the sampler's name in lower case only and takes any number as a
    /// ratio; a sampler is handed to it only where its reading would differ.
    fn sampler(&mut self) -> Result<Option<SamplerConfig>, ConfigError> {
        const VAR: &str = "OTEL_TRACES_SAMPLER";
        const ARG: &str = "OTEL_TRACES_SAMPLER_ARG";
        let Some((value, raw)) = self.lowercase(VAR)? else {
            return Ok(None);
        };
        let warned = self.warnings.len();
        let arg = self.get(ARG)?;
        let mut ratio = || match arg.as_deref().map(|a| a.trim().parse::<f64>()) {
            None => 1.0,
            Some(Ok(r)) if (0.0..=1.0).contains(&r) => r,
            Some(_) => {
                let raw = arg.as_deref().unwrap_or_default();
                self.warn(ARG, raw, "expected a number from 0 to 1", "1.0");
                1.0
            }
        };
        let sampler = match value.as_str() {
            "always_on" => SamplerConfig::AlwaysOn,
            "always_off" => SamplerConfig::AlwaysOff,
            "parentbased_always_on" => SamplerConfig::ParentBasedAlwaysOn,
            "parentbased_always_off" => SamplerConfig::ParentBasedAlwaysOff,
            "traceidratio" => SamplerConfig::TraceIdRatio(ratio()),
            "parentbased_traceidratio" => SamplerConfig::ParentBasedTraceIdRatio(ratio()),
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
        };
        let sdk_reads_it = raw == value && self.warnings.len() == warned;
        Ok((!sdk_reads_it).then_some(sampler))
    }

    /// The attributes, decoded (none when the value is unusable), and the correction the
    /// SDK needs: `None` when its own reading gives the same.
    fn resource_attributes(&mut self) -> Result<(Attributes, Option<Attributes>), ConfigError> {
        const VAR: &str = "OTEL_RESOURCE_ATTRIBUTES";
        let Some(raw) = self.get(VAR)? else {
            return Ok((Vec::new(), None));
        };
        // "The entire environment variable value SHOULD be discarded" on any error.
        match parse_resource_attributes(&raw) {
            // Nothing to decode: the SDK's reading is the same.
            Ok(attributes) if !raw.contains('%') => Ok((attributes, None)),
            Ok(attributes) => Ok((attributes.clone(), Some(attributes))),
            Err(why) => {
                self.warn(VAR, &raw, &why, "no attributes from it");
                Ok((Vec::new(), Some(Vec::new())))
            }
        }
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

    /// What [`TelemetryConfig::from_env`] gives with no variable set: for the benchmarks.
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
        let (attributes, resource_attributes) = reader.resource_attributes()?;
        let attributes_name = attributes
            .into_iter()
            .find(|(k, _)| k == "service.name")
            .map(|(_, v)| v);
        let service_name = reader
            .get("OTEL_SERVICE_NAME")?
            .filter(|name| !name.is_empty())
            .or(attributes_name)
            .unwrap_or_else(|| default_service_name.to_owned());
        let sdk_disabled = reader.sdk_disabled()?;
        let protocol = reader.protocol()?;
        let endpoint = reader.endpoint(protocol)?;
        let sampler = reader.sampler()?;
        let max_queue_size = reader.number("OTEL_BSP_MAX_QUEUE_SIZE", 2048_usize, |n| *n >= 1)?;
        let max_export_batch_size =
            reader.number("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512_usize, |n| *n >= 1)?;
        // Only warned about: the SDK's own default for these is the specification's.
        reader.number("OTEL_BSP_SCHEDULE_DELAY", 5000_u64, |_| true)?;
        reader.number("OTEL_BSP_EXPORT_TIMEOUT", 30000_u64, |_| true)?;
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
            corrections: Corrections {
                sampler,
                max_queue_size,
                max_export_batch_size,
                endpoint,
                resource_attributes,
            },
            log_format: parse_log_format(&reader)?,
            log_filter,
            context_activation: env_config::on_off_value(
                "TRACING_CONTEXT_ACTIVATION",
                reader.get("TRACING_CONTEXT_ACTIVATION")?.as_deref(),
                false,
            )?,
            warnings: reader.warnings,
        })
    }
}

/// `LOG_FORMAT` is the project's own: a typo stops start-up with a line naming it.
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

/// The value with its `%XX` escapes decoded; `None` when a `%` is not followed by two hex
/// digits (which percent-encoding's decoder would keep as they are) or the bytes are not
/// UTF-8.
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
    fn context_activation_is_an_on_off_switch_off_by_default() {
        assert!(!read(&[]).context_activation);
        assert!(read(&[("TRACING_CONTEXT_ACTIVATION", "on")]).context_activation);
        assert!(read(&[("TRACING_CONTEXT_ACTIVATION", "TRUE")]).context_activation);
        assert!(!read(&[("TRACING_CONTEXT_ACTIVATION", "off")]).context_activation);
        let lookup =
            |var: &'static str| Ok((var == "TRACING_CONTEXT_ACTIVATION").then(|| "yes".to_owned()));
        let refused = TelemetryConfig::read("test", "0", &lookup).unwrap_err();
        assert!(
            refused.to_string().contains("TRACING_CONTEXT_ACTIVATION"),
            "{refused}"
        );
    }

    /// The corrections and the one warning line `vars` give.
    fn corrected(vars: &[(&'static str, &str)]) -> (Corrections, Vec<String>) {
        let config = read(vars);
        (config.corrections, config.warnings)
    }

    #[test]
    fn with_no_variable_the_sdk_reads_everything_itself() {
        assert_eq!(corrected(&[]), (Corrections::default(), vec![]));
        assert_eq!(TelemetryConfig::defaults("test"), read(&[]));
    }

    #[test]
    fn well_formed_settings_are_left_to_the_sdk() {
        let (corrections, warnings) = corrected(&[
            ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.1"),
            ("OTEL_BSP_MAX_QUEUE_SIZE", "4096"),
            ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "256"),
            ("OTEL_BSP_SCHEDULE_DELAY", "1000"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://jaeger:4317"),
            (
                "OTEL_RESOURCE_ATTRIBUTES",
                "deployment.environment=workshop",
            ),
        ]);
        assert_eq!((corrections, warnings), (Corrections::default(), vec![]));
    }

    #[test]
    fn sampler_names_are_case_insensitive() {
        let (corrections, warnings) = corrected(&[("OTEL_TRACES_SAMPLER", "Always_Off")]);
        assert_eq!(corrections.sampler, Some(SamplerConfig::AlwaysOff));
        assert!(warnings.is_empty(), "{warnings:?}");
        let (corrections, _) = corrected(&[
            ("OTEL_TRACES_SAMPLER", "ParentBased_TraceIdRatio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.25"),
        ]);
        assert_eq!(
            corrections.sampler,
            Some(SamplerConfig::ParentBasedTraceIdRatio(0.25))
        );
    }

    #[test]
    fn an_unknown_sampler_is_warned_about_and_the_default_used() {
        let (corrections, warnings) = corrected(&[("OTEL_TRACES_SAMPLER", "sometimes")]);
        assert_eq!(
            corrections.sampler,
            Some(SamplerConfig::ParentBasedAlwaysOn)
        );
        assert!(warnings[0].starts_with("OTEL_TRACES_SAMPLER=\"sometimes\" ignored"));
    }

    #[test]
    fn a_ratio_outside_zero_to_one_is_warned_about_and_one_used() {
        for arg in ["2", "-1", "NaN", "abc"] {
            let (corrections, warnings) = corrected(&[
                ("OTEL_TRACES_SAMPLER", "traceidratio"),
                ("OTEL_TRACES_SAMPLER_ARG", arg),
            ]);
            assert_eq!(
                corrections.sampler,
                Some(SamplerConfig::TraceIdRatio(1.0)),
                "{arg}"
            );
            assert_eq!(warnings.len(), 1, "{arg}: {warnings:?}");
            assert!(warnings[0].starts_with("OTEL_TRACES_SAMPLER_ARG="), "{arg}");
        }
    }

    #[test]
    fn a_zero_queue_or_batch_size_is_warned_about_and_the_default_used() {
        let (corrections, warnings) = corrected(&[
            ("OTEL_BSP_MAX_QUEUE_SIZE", "0"),
            ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "0"),
        ]);
        assert_eq!(
            (
                corrections.max_queue_size,
                corrections.max_export_batch_size
            ),
            (Some(2048), Some(512))
        );
        assert_eq!(warnings.len(), 2, "{warnings:?}");
    }

    #[test]
    fn a_batch_setting_that_is_not_a_number_is_warned_about() {
        for var in [
            "OTEL_BSP_MAX_QUEUE_SIZE",
            "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
            "OTEL_BSP_SCHEDULE_DELAY",
            "OTEL_BSP_EXPORT_TIMEOUT",
        ] {
            let (_, warnings) = corrected(&[(var, "soon")]);
            assert_eq!(warnings.len(), 1, "{var}: {warnings:?}");
            assert!(warnings[0].starts_with(&format!("{var}=\"soon\" ignored")));
        }
    }

    #[test]
    fn an_endpoint_that_is_not_a_url_gives_way_to_the_next_setting_or_the_default() {
        let (corrections, warnings) = corrected(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "jaeger:4317")]);
        assert_eq!(
            corrections.endpoint.as_deref(),
            Some("http://localhost:4317")
        );
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        let (corrections, _) = corrected(&[
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "nowhere"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://jaeger:4318/"),
        ]);
        assert_eq!(
            corrections.endpoint.as_deref(),
            Some("http://jaeger:4318/v1/traces")
        );
    }

    #[test]
    fn protocol_names_are_case_insensitive_and_grpc_is_the_default() {
        assert_eq!(read(&[]).protocol, Protocol::Grpc);
        let http = read(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "HTTP/Protobuf")]);
        assert_eq!(
            (http.protocol, http.warnings.len()),
            (Protocol::HttpProtobuf, 0)
        );
        let bad = read(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "carrier-pigeon")]);
        assert_eq!((bad.protocol, bad.warnings.len()), (Protocol::Grpc, 1));
    }

    #[test]
    fn a_grpc_exporter_pointed_at_the_http_port_is_warned_about() {
        let config = read(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4318")]);
        assert_eq!(config.corrections.endpoint, None);
        assert!(config.warnings[0].contains("every export will fail"));
    }

    #[test]
    fn resource_attribute_values_are_percent_decoded() {
        let (corrections, warnings) = corrected(&[(
            "OTEL_RESOURCE_ATTRIBUTES",
            "deployment.environment=workshop,team=a%20b",
        )]);
        assert_eq!(
            corrections.resource_attributes,
            Some(vec![
                ("deployment.environment".to_owned(), "workshop".to_owned()),
                ("team".to_owned(), "a b".to_owned())
            ])
        );
        assert!(warnings.is_empty());
    }

    #[test]
    fn a_malformed_resource_attributes_value_is_discarded_whole() {
        for raw in ["team=a,novalue", "k=%zz", "=v"] {
            let (corrections, warnings) = corrected(&[("OTEL_RESOURCE_ATTRIBUTES", raw)]);
            assert_eq!(corrections.resource_attributes, Some(vec![]), "{raw}");
            assert_eq!(warnings.len(), 1, "{raw}: {warnings:?}");
        }
    }

    #[test]
    fn the_service_name_comes_from_the_variable_the_attributes_or_the_binary() {
        assert_eq!(read(&[]).service_name, "test");
        let attributes = ("OTEL_RESOURCE_ATTRIBUTES", "service.name=a%2Db");
        assert_eq!(read(&[attributes]).service_name, "a-b");
        let name = ("OTEL_SERVICE_NAME", "orders");
        assert_eq!(read(&[attributes, name]).service_name, "orders");
    }

    #[test]
    fn sdk_disabled_is_true_only_for_true_in_any_case() {
        assert!(read(&[("OTEL_SDK_DISABLED", "TRUE")]).sdk_disabled);
        let one = read(&[("OTEL_SDK_DISABLED", "1")]);
        assert_eq!((one.sdk_disabled, one.warnings.len()), (false, 1));
    }
}
