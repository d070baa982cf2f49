//! Ports for the servers the tests and the Docker-less runner start on 127.0.0.1: services,
//! collectors (our receiver, Jaeger and its internal listeners), Prometheus, PostgreSQL.
//!
//! A port chosen "free" must still be free when its server binds it, perhaps after a
//! restart. Three things stood in the way (issue 28, each seen here):
//!
//! - **a copy of our own socket in a child process.** A socket is inherited by every child
//!   forked while it is open, until that child calls `exec` (close-on-exec only closes it
//!   then). Tests run side by side in threads of one process, and they start processes all
//!   the time (services, `pg_ctl`, Jaeger). A port checked by listening on it and closing
//!   the listener stayed *listening* in a child that was forked meanwhile, and the server
//!   started on it a moment later failed with `AddrInUse`; a second later, nothing held
//!   it. So a port is checked by binding a socket that never listens: such a socket, or
//!   its copy, does not stop a server from binding the port (both ask `SO_REUSEADDR`),
//!   while any socket listening there does stop the check.
//! - **another draw.** A check leaves nothing bound, so every port handed out is recorded:
//!   this process never hands it out twice, and another process on the machine (the
//!   Docker-less runner's Jaeger picks its own ports; a second checkout's tests) does not
//!   take it while ours is alive: a **lease**, a file per port in a folder of the temp dir
//!   naming the process that drew it. A lease whose process has exited is taken over. The
//!   port is ours for the life of the process, through every restart of its server.
//! - **outgoing connections and binds to port 0**, which take ports from the kernel's
//!   ephemeral range: ports are drawn below it.
//!
//! [`holders`] says who holds a port, for the message of a bind that failed anyway;
//! [`listener`] names what listens on one, in a few words, for a learner.

use std::{
    collections::HashSet, fs::OpenOptions, io::Write as _, net::SocketAddr, path::PathBuf,
    sync::Mutex, time::Instant,
};

use socket2::{Domain, Socket, Type};

/// `N` distinct ports, each free when drawn and leased to this process.
pub fn free_ports<const N: usize>() -> [u16; N] {
    let (low, high) = unassigned_range();
    let mut drawn = Vec::with_capacity(N);
    let mut draw = random_numbers();
    for _ in 0..10_000 {
        if drawn.len() == N {
            break;
        }
        let port = low + (draw() % u64::from(high - low)) as u16;
        if is_free(port) && lease(port) {
            drawn.push(port);
        }
    }
    assert_eq!(drawn.len(), N, "no {N} free ports in {low}..{high}");
    record_draw(&drawn);
    std::array::from_fn(|i| drawn[i])
}

/// Whether a server could bind 127.0.0.1:`port` now: nothing listens there. Checked with
/// a socket that never listens (see the module's first lines).
pub fn is_free(port: u16) -> bool {
    let Ok(socket) = Socket::new(Domain::IPV4, Type::STREAM, None) else {
        return false;
    };
    socket.set_reuse_address(true).is_ok()
        && socket
            .bind(&SocketAddr::from(([127, 0, 0, 1], port)).into())
            .is_ok()
}

/// One port, as [`free_ports`].
pub fn free_port() -> u16 {
    free_ports::<1>()[0]
}

/// Who holds each of `ports`: the sockets bound to it with their processes (`ss`), and the
/// draws this process made, for the message of a bind that failed.
pub fn holders(ports: &[u16]) -> String {
    let sockets = sockets();
    let mut text = String::new();
    for &port in ports {
        let bound = bound_to(&sockets, port);
        let lease = std::fs::read_to_string(lease_dir().join(port.to_string()))
            .map(|pid| format!("leased to pid {}", pid.trim()))
            .unwrap_or_else(|_| "no lease".to_owned());
        text.push_str(&format!(
            "port {port} ({lease}; this process is {}):\n  {}\n",
            std::process::id(),
            if bound.is_empty() {
                "no socket bound to it now".to_owned()
            } else {
                bound.join("\n  ")
            }
        ));
    }
    let draws = DRAWS.lock().expect("draw log");
    text.push_str("this process's draws (seconds since the first, thread, ports):\n");
    for (at, thread, ports) in draws.iter() {
        text.push_str(&format!("  {at:.3} {thread} {ports:?}\n"));
    }
    text
}

/// What listens on `port` (on 127.0.0.1 or on every address), as `name (pid N)` from `ss`,
/// for a one-line message: `docker-proxy (pid 1234)` when compose publishes the port.
/// `None` when nothing listens there, or when its process is not this user's to see (`ss`
/// shows another user's sockets without their processes).
pub fn listener(port: u16) -> Option<String> {
    let sockets = sockets();
    let mut found: Vec<String> = Vec::new();
    for line in bound_to(&sockets, port) {
        if !line.starts_with("LISTEN") {
            continue;
        }
        // Both of compose's sockets (0.0.0.0 and [::]) name the same process.
        for process in processes(line) {
            if !found.contains(&process) {
                found.push(process);
            }
        }
    }
    (!found.is_empty()).then(|| found.join(" and "))
}

/// Every TCP socket of the machine with its process where this user may see it, one a line
/// (`ss -Htanp`), or why there is no list.
fn sockets() -> String {
    std::process::Command::new("ss")
        .args(["-Htanp"])
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
        .unwrap_or_else(|e| format!("(ss: {e})"))
}

/// The lines of `sockets` bound to `port`.
fn bound_to(sockets: &str, port: u16) -> Vec<&str> {
    let suffix = format!(":{port}");
    sockets
        .lines()
        .filter(|line| {
            // Local address is the fourth column: 127.0.0.1:PORT.
            line.split_whitespace()
                .nth(3)
                .is_some_and(|local| local.ends_with(&suffix))
        })
        .collect()
}

/// The processes of one line of `ss -p`, `users:(("name",pid=N,fd=M),...)`, as `name (pid N)`.
fn processes(line: &str) -> Vec<String> {
    let Some(users) = line.split("users:((").nth(1) else {
        return Vec::new();
    };
    users
        .trim_end()
        .trim_end_matches("))")
        .split("),(")
        .filter_map(|user| {
            let mut fields = user.split(',');
            let name = fields.next()?.trim_matches('"');
            let pid = fields.find_map(|field| field.strip_prefix("pid="))?;
            Some(format!("{name} (pid {pid})"))
        })
        .collect()
}

/// [`holders`] of `ports`, after a line break, when `message` (a server's log or error)
/// says an address was in use (the kernel's `address already in use`, or the runner's
/// `... is already in use`); else nothing.
pub fn holders_if_in_use(message: &str, ports: &[u16]) -> String {
    if message.to_ascii_lowercase().contains("already in use") {
        format!("\nwho holds its ports:\n{}", holders(ports))
    } else {
        String::new()
    }
}

/// Every draw of this process, for [`holders`].
static DRAWS: Mutex<Vec<(f64, String, Vec<u16>)>> = Mutex::new(Vec::new());

fn record_draw(ports: &[u16]) {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let at = START.get_or_init(Instant::now).elapsed().as_secs_f64();
    let thread = std::thread::current().name().unwrap_or("?").to_owned();
    DRAWS
        .lock()
        .expect("draw log")
        .push((at, thread, ports.to_vec()));
}

/// The folder of leases, shared by every user of the machine (sticky, as /tmp is).
fn lease_dir() -> PathBuf {
    std::env::temp_dir().join("tracing-workshop-port-leases")
}

/// Leases `port` to this process; false when this process drew it before or another live
/// process holds it.
fn lease(port: u16) -> bool {
    static DRAWN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
    // Held throughout: two threads of ours must not both take the same file.
    let mut drawn = DRAWN.lock().expect("drawn ports");
    let drawn = drawn.get_or_insert_with(HashSet::new);
    if drawn.contains(&port) {
        return false;
    }
    let leased = lease_file(port);
    if leased {
        drawn.insert(port);
    }
    leased
}

/// The file that leases `port` to this process; false when another live process has it.
fn lease_file(port: u16) -> bool {
    let dir = lease_dir();
    if !dir.is_dir() {
        use std::os::unix::fs::PermissionsExt as _;
        let _ = std::fs::create_dir_all(&dir);
        let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777));
    }
    let path = dir.join(port.to_string());
    let me = std::process::id();
    for _ in 0..2 {
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(mut file) => return write!(file, "{me}").is_ok(),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let holder = std::fs::read_to_string(&path)
                    .ok()
                    .and_then(|pid| pid.trim().parse::<u32>().ok());
                match holder {
                    Some(pid) if pid != me && alive(pid) => return false,
                    // Its process has exited (or the file is half written by one that was
                    // killed, or it is an earlier process of ours with the same pid): take
                    // it over.
                    _ => {
                        if std::fs::remove_file(&path).is_err() {
                            return false;
                        }
                    }
                }
            }
            // No lease folder we can write (another user's, say): the port is still free.
            Err(_) => return true,
        }
    }
    false
}

fn alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only checks that the process exists; nothing is sent.
    let result = unsafe { libc::kill(pid, 0) };
    result == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Ports neither the ephemeral range (Linux: `ip_local_port_range`, 32768-60999 by
/// default) nor the well-known services below 10000 use.
fn unassigned_range() -> (u16, u16) {
    let ephemeral_start = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    (10_000, ephemeral_start.max(20_000))
}

/// A stream of random numbers from std's randomly keyed hasher: a few ports do not need a
/// random-number crate.
fn random_numbers() -> impl FnMut() -> u64 {
    use std::hash::{BuildHasher as _, Hasher as _};
    let state = std::collections::hash_map::RandomState::new();
    let mut counter = 0u64;
    move || {
        counter += 1;
        let mut hasher = state.build_hasher();
        hasher.write_u64(counter);
        hasher.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::net::TcpListener;

    #[test]
    fn drawn_ports_are_distinct_bindable_and_leased_to_this_process() {
        let ports = free_ports::<8>();
        let again = free_ports::<8>();
        let mut sorted = [ports, again].concat();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 16, "never drawn twice: {ports:?} {again:?}");
        for port in ports {
            TcpListener::bind(("127.0.0.1", port)).expect("a drawn port binds");
            let lease = std::fs::read_to_string(lease_dir().join(port.to_string())).unwrap();
            assert_eq!(lease, std::process::id().to_string());
        }
    }

    #[test]
    fn a_port_leased_to_a_live_process_is_not_handed_out_and_a_dead_ones_is() {
        // Pid 1 is always alive; a pid above the kernel's maximum never is.
        let port = (20_000..30_000)
            .find(|port| is_free(*port) && !lease_dir().join(port.to_string()).exists())
            .expect("an unleased port");
        let path = lease_dir().join(port.to_string());
        std::fs::create_dir_all(lease_dir()).unwrap();
        std::fs::write(&path, "1").unwrap();
        assert!(!lease(port), "leased to pid 1");
        std::fs::write(&path, "4194305").unwrap();
        assert!(lease(port), "its leaseholder is gone");
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            std::process::id().to_string()
        );
    }

    /// Held by each test that runs `ss` while it listens: the child forked for one test's
    /// `ss` holds a copy of the other's listener until it execs (the module's first lines),
    /// and that copy kept a port the other had just closed listening.
    static FORKS: Mutex<()> = Mutex::new(());

    #[test]
    fn holders_names_the_process_that_binds_a_port() {
        let _forks = FORKS.lock().unwrap();
        let [port] = free_ports::<1>();
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        assert!(!is_free(port), "a listening port is not free");
        let text = holders(&[port]);
        assert!(
            text.contains(&format!("pid={}", std::process::id())),
            "{text}"
        );
        assert!(text.contains(&format!("[{port}]")), "the draw: {text}");
        drop(listener);
        assert!(is_free(port));
    }

    #[test]
    fn listener_names_the_listening_process_and_only_while_it_listens() {
        let _forks = FORKS.lock().unwrap();
        let [port] = free_ports::<1>();
        assert_eq!(listener(port), None, "nothing listens yet");
        let listener_socket = TcpListener::bind(("127.0.0.1", port)).unwrap();
        let named = listener(port).expect("our own listener is ours to see");
        assert!(
            named.ends_with(&format!("(pid {})", std::process::id())),
            "{named}"
        );
        drop(listener_socket);
        assert_eq!(listener(port), None, "{port} closed");
    }

    #[test]
    fn processes_are_read_from_ss_lines_as_compose_leaves_them() {
        // docker-proxy publishing a port on both address families, as compose does; and a
        // socket whose process ss may not show (another user's).
        let v4 = r#"LISTEN 0 4096 0.0.0.0:16686 0.0.0.0:* users:(("docker-proxy",pid=1234,fd=7))"#;
        let v6 = r#"LISTEN 0 4096 [::]:16686 [::]:* users:(("docker-proxy",pid=1234,fd=7),("x",pid=9,fd=1)) "#;
        assert_eq!(processes(v4), ["docker-proxy (pid 1234)"]);
        assert_eq!(processes(v6), ["docker-proxy (pid 1234)", "x (pid 9)"]);
        assert!(processes("LISTEN 0 128 0.0.0.0:2024 0.0.0.0:*").is_empty());
        let sockets = format!("{v4}\nLISTEN 0 128 127.0.0.1:6686 0.0.0.0:*\n");
        assert_eq!(bound_to(&sockets, 16686), [v4]);
        assert_eq!(
            bound_to(&sockets, 6686).len(),
            1,
            "a port, not a suffix of one"
        );
    }

    /// The failure of issue 28: a copy of a socket that checked the port, held by a child
    /// process, must not keep a server off it.
    #[test]
    fn a_copy_of_the_check_does_not_keep_a_server_off_the_port() {
        let [port] = free_ports::<1>();
        let check = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        check.set_reuse_address(true).unwrap();
        check
            .bind(&SocketAddr::from(([127, 0, 0, 1], port)).into())
            .unwrap();
        // As a forked child's copy would be: still open while the server binds.
        let _copy = check.try_clone().unwrap();
        TcpListener::bind(("127.0.0.1", port)).expect("the server binds beside the copy");
    }
}
