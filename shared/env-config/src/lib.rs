//! Settings from the environment, for every binary of the project: each reads its
//! variables once at start-up, and a missing or malformed one is refused with one line
//! naming it (`main` prints it and exits with code 2).

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

/// `on` / `off` (also `true` / `false`), for the workshop's switches.
pub fn on_off(var: &'static str, default: bool) -> Result<bool, ConfigError> {
    on_off_value(var, optional(var)?.as_deref(), default)
}

/// What [`on_off`] makes of `var`'s value once read (`None`: unset), for a reader that
/// looks the variable up itself.
pub fn on_off_value(
    var: &'static str,
    value: Option<&str>,
    default: bool,
) -> Result<bool, ConfigError> {
    match value.map(str::to_ascii_lowercase).as_deref() {
        None => Ok(default),
        Some("on" | "true") => Ok(true),
        Some("off" | "false") => Ok(false),
        Some(other) => Err(ConfigError::new(
            var,
            format!("{other:?}: expected on or off"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sets `var` for this test only: every test uses variables of its own.
    fn set(var: &str, value: &str) {
        // SAFETY: each test sets only variables no other test reads.
        unsafe { env::set_var(var, value) };
    }

    #[test]
    fn empty_is_unset_and_values_are_trimmed() {
        set("ENV_CONFIG_TEST_EMPTY", "  ");
        assert_eq!(optional("ENV_CONFIG_TEST_EMPTY"), Ok(None));
        set("ENV_CONFIG_TEST_TRIM", " 42 ");
        assert_eq!(parsed("ENV_CONFIG_TEST_TRIM", 0_u32), Ok(42));
        assert_eq!(parsed("ENV_CONFIG_TEST_UNSET", 7_u32), Ok(7));
        assert!(required("ENV_CONFIG_TEST_UNSET").is_err());
    }

    #[test]
    fn a_bad_value_is_refused_naming_the_variable() {
        set("ENV_CONFIG_TEST_BAD", "many");
        let error = parsed("ENV_CONFIG_TEST_BAD", 1_u32).unwrap_err();
        assert_eq!(error.var, "ENV_CONFIG_TEST_BAD");
        assert!(error.to_string().contains("\"many\""), "{error}");
        set("ENV_CONFIG_TEST_ZERO", "0");
        assert!(at_least_one("ENV_CONFIG_TEST_ZERO", 1_u32).is_err());
    }

    #[test]
    fn switches_are_on_or_off() {
        for (value, expected) in [
            ("on", true),
            ("TRUE", true),
            ("off", false),
            ("False", false),
        ] {
            set("ENV_CONFIG_TEST_SWITCH", value);
            assert_eq!(
                on_off("ENV_CONFIG_TEST_SWITCH", !expected),
                Ok(expected),
                "{value}"
            );
        }
        set("ENV_CONFIG_TEST_SWITCH_BAD", "yes");
        assert!(on_off("ENV_CONFIG_TEST_SWITCH_BAD", true).is_err());
        assert_eq!(on_off("ENV_CONFIG_TEST_SWITCH_UNSET", true), Ok(true));
    }
}
