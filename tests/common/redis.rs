//! A throwaway redis-server for a test, on a free loopback port, nothing saved; killed when
//! dropped, and on purpose by fault tests. A machine without it fails the test with the
//! command that installs it.

use std::process::{Child, Command, Stdio};

pub const INSTALL: &str = "apt-get install -y redis-server";

pub struct TestRedis {
    pub port: u16,
    child: Option<Child>,
}

impl TestRedis {
    pub fn start() -> TestRedis {
        let mut r = TestRedis {
            port: super::pg::free_port(),
            child: None,
        };
        r.start_server();
        r
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts the server (again, after [`TestRedis::kill`]) and waits until it answers.
    pub fn start_server(&mut self) {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("redis-server is needed for this test ({e}): {INSTALL}"));
        self.child = Some(child);
        // It answers PING once it listens: connect until it does (a guard, not a timing).
        for _ in 0..500 {
            let ok = Command::new("redis-cli")
                .args(["-p", &self.port.to_string(), "PING"])
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "PONG");
            if ok {
                return;
            }
            std::thread::yield_now();
        }
        panic!("redis-server did not start");
    }

    /// Kills the server without warning (SIGKILL).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        self.kill();
    }
}
