use env_config::ConfigError;
use service_kit::CommonConfig;

#[derive(Debug, Clone)]
pub struct Config {
    pub common: CommonConfig,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            common: CommonConfig::from_env("users", env!("CARGO_PKG_VERSION"), "0.0.0.0:8081")?,
        })
    }
}
