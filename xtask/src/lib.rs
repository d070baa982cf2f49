//! Project tasks. `compose` reads docker-compose.yml and .env the way compose does, so the
//! Docker-less runner (`up`) starts the binaries with the very environment compose gives them.

pub mod bench;
pub mod compose;
pub mod soak;
mod system;
pub mod up;
