//! A real headless Chromium that presents a client certificate, for the tests of the HTTPS
//! audit console: what an operator's browser does, TLS session and all.
//!
//! Each [`Browser`] is its own world, so tests run in parallel without sharing anything:
//! - a temporary `HOME` whose NSS database (`$HOME/.pki/nssdb`, where Chromium on Linux keeps
//!   both its trusted roots and its client certificates) trusts the test CA and holds the
//!   given client identity, imported from a PKCS#12 file that `openssl pkcs12` makes out of
//!   the PEM pair (NSS imports private keys only from PKCS#12);
//! - a temporary profile (`--user-data-dir`) whose `Default/Preferences` holds an
//!   `auto_select_certificate` content setting for `https://127.0.0.1` and `https://localhost`
//!   (any port). Without it Chromium waits for someone to pick a certificate in a dialog that
//!   a headless browser never shows, and the page never loads. This is the per-profile form
//!   of the `AutoSelectCertificateForUrls` policy, so nothing is written under `/etc`;
//! - its own chromedriver on a port it picks itself (`--port=0`, read back from its banner),
//!   in a process group of its own so that dropping the [`Browser`], even while a failed test
//!   unwinds, ends chromedriver, Chromium and every helper process Chromium started.
//!
//! The server's certificate is trusted for real (the CA is in the NSS database); nothing
//! here turns certificate errors off. The WebDriver client is a few lines of HTTP/1.1 over
//! tokio's `TcpStream` rather than a crate: the tests need a dozen commands.
//!
//! Missing programs fail the test with the command that installs them; they never skip it.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use popgate::pki::CertPair;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const INSTALL: &str = "apt-get install -y chromium chromium-driver libnss3-tools";
/// The key under which WebDriver returns an element reference (W3C WebDriver §12.1).
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
/// Longer than any page or script of a test may take: a hung browser fails the test.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// What the profile's automatic certificate selection covers. A content-setting pattern
/// without a port matches every port, so the tests' `127.0.0.1:0` servers need no rewrite.
const AUTO_SELECT_FOR: [&str; 2] = ["https://127.0.0.1", "https://localhost"];

/// A WebDriver command that failed: `error` is the spec's error code, `message` Chromium's
/// account (a refused TLS session reads `unknown error: net::ERR_BAD_SSL_CLIENT_AUTH_CERT`).
#[derive(Debug, Clone)]
pub struct WebDriverError {
    pub error: String,
    pub message: String,
}

impl std::fmt::Display for WebDriverError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.error, self.message)
    }
}

/// A response read by [`Browser::fetch`], through the page's own TLS session.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub status: u16,
    /// The `Content-Type` header, empty when the response has none.
    pub content_type: String,
    pub body: String,
}

/// One headless Chromium with its own certificates and profile, and the chromedriver that
/// drives it. Dropping it ends both and removes their files.
pub struct Browser {
    driver: Child,
    port: u16,
    /// `None` until the session is open, so a failed start still cleans up.
    session: Option<String>,
    /// `home/` (the NSS database) and `profile/`.
    dir: tempfile::TempDir,
}

impl Browser {
    /// Starts a browser that trusts `ca_pem` and, when `identity` is given, presents it as
    /// its client certificate to any `https://127.0.0.1` or `https://localhost` server that
    /// asks for one. Without an identity it has no certificate to present.
    pub async fn start(ca_pem: &str, identity: Option<&CertPair>) -> Browser {
        for program in [CHROMIUM, CHROMEDRIVER] {
            require(Path::new(program));
        }
        for program in ["certutil", "pk12util", "openssl"] {
            require_on_path(program);
        }
        let dir = tempfile::tempdir().expect("browser temp dir");
        let home = dir.path().join("home");
        let profile = dir.path().join("profile");
        nss_database(&home, ca_pem, identity);
        let downloads = dir.path().join("downloads");
        std::fs::create_dir_all(&downloads).expect("downloads dir");
        preferences(&profile, &downloads);

        let mut driver = Command::new(CHROMEDRIVER)
            .arg("--port=0")
            .env("HOME", &home)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            // Its own group: Chromium and its helpers join it, and Drop ends the group.
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("start {CHROMEDRIVER}: {e}; install with `{INSTALL}`"));
        let stdout = driver.stdout.take().expect("chromedriver stdout");
        let mut browser = Browser {
            driver,
            port: 0,
            session: None,
            dir,
        };
        browser.port = tokio::task::spawn_blocking(move || driver_port(stdout))
            .await
            .expect("read chromedriver banner");

        let args = vec![
            "--headless=new".to_string(),
            // Root in a container has no usable sandbox; the pages are our own.
            "--no-sandbox".into(),
            // Containers often have a tiny /dev/shm.
            "--disable-dev-shm-usage".into(),
            "--disable-gpu".into(),
            "--no-first-run".into(),
            "--no-default-browser-check".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--window-size=1280,900".into(),
            format!("--user-data-dir={}", profile.display()),
        ];
        let capabilities = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "acceptInsecureCerts": false,
                    "timeouts": { "pageLoad": 30_000, "script": 30_000, "implicit": 0 },
                    "goog:chromeOptions": { "binary": CHROMIUM, "args": args },
                }
            }
        });
        let value = browser
            .call("POST", "/session", Some(capabilities))
            .await
            .unwrap_or_else(|e| panic!("open a WebDriver session: {e}"));
        let session = value["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no sessionId in {value}"));
        browser.session = Some(session.to_string());
        browser
    }

    /// Navigates to `url` and waits for the page to load. A server that refuses the TLS
    /// session or the connection is an error here (`message` names Chromium's `ERR_…`
    /// code), not a page. A certificate warning (an untrusted server) is a page: Chromium's
    /// interstitial, whose source names the `ERR_CERT_…` code.
    pub async fn goto(&self, url: &str) -> Result<(), WebDriverError> {
        if let Err(mut refused) = self
            .command("POST", "/url", Some(json!({ "url": url })))
            .await
        {
            // "unknown error: net::ERR_…\n  (Session info: …)" → "net::ERR_…".
            if let Some(code) = refused
                .message
                .split_whitespace()
                .find(|w| w.starts_with("net::ERR_"))
            {
                refused.message = code.to_string();
            }
            return Err(refused);
        }
        // Chromedriver sometimes reports a failed load as an error and sometimes as the
        // loaded error page (body class `neterror`, the code as the last line of its text);
        // both come out as an error here.
        let script = "return document.body && document.body.classList.contains('neterror')
            ? (document.body.innerText.match(/ERR_[A-Z0-9_]+/) || ['ERR_UNKNOWN'])[0] : null;";
        match self.execute(script, vec![]).await {
            Value::String(code) => Err(driver_error("unknown error", format!("net::{code}"))),
            _ => Ok(()),
        }
    }

    /// The URL of the current page.
    pub async fn url(&self) -> String {
        string(self.expect("GET", "/url", None).await)
    }

    pub async fn title(&self) -> String {
        string(self.expect("GET", "/title", None).await)
    }

    /// The current DOM, serialized.
    pub async fn source(&self) -> String {
        string(self.expect("GET", "/source", None).await)
    }

    /// How many elements match the CSS `selector`.
    pub async fn count(&self, selector: &str) -> usize {
        self.find_all(selector).await.len()
    }

    /// The rendered text of the first element matching `selector`; panics when none does.
    pub async fn text(&self, selector: &str) -> String {
        let element = self.find(selector).await;
        string(
            self.expect("GET", &format!("/element/{element}/text"), None)
                .await,
        )
    }

    /// The rendered text of every element matching `selector`, in document order.
    pub async fn texts(&self, selector: &str) -> Vec<String> {
        let mut texts = Vec::new();
        for element in self.find_all(selector).await {
            let path = format!("/element/{element}/text");
            texts.push(string(self.expect("GET", &path, None).await));
        }
        texts
    }

    /// An attribute of the first element matching `selector` (`None` when it has none).
    pub async fn attribute(&self, selector: &str, name: &str) -> Option<String> {
        let element = self.find(selector).await;
        let path = format!("/element/{element}/attribute/{name}");
        self.expect("GET", &path, None)
            .await
            .as_str()
            .map(str::to_string)
    }

    /// Replaces the value of the form field matching `selector` with `text`, as typed.
    pub async fn fill(&self, selector: &str, text: &str) {
        let element = self.find(selector).await;
        self.expect(
            "POST",
            &format!("/element/{element}/clear"),
            Some(json!({})),
        )
        .await;
        let body = json!({ "text": text });
        self.expect("POST", &format!("/element/{element}/value"), Some(body))
            .await;
    }

    /// Clicks the element matching `selector`, waiting for a navigation it starts.
    pub async fn click(&self, selector: &str) {
        let element = self.find(selector).await;
        self.expect(
            "POST",
            &format!("/element/{element}/click"),
            Some(json!({})),
        )
        .await;
    }

    /// Submits the form matching `selector` as its submit button would, and waits until the
    /// page it leads to has loaded.
    pub async fn submit(&self, selector: &str) {
        let form = self.find(selector).await;
        // The marker lives on the old document's window only: once it is gone, the answer
        // to the form has replaced the page, whatever its URL.
        let script = "window.__popgateSubmitted = true; arguments[0].requestSubmit();";
        self.execute(script, vec![json!({ ELEMENT: form })]).await;
        let loaded = "return window.__popgateSubmitted === undefined
            && document.readyState === 'complete';";
        let deadline = tokio::time::Instant::now() + COMMAND_TIMEOUT;
        // Each check is itself a WebDriver command, which chromedriver holds back while a
        // navigation is pending; the pause only spaces out checks during the form's request.
        let body = json!({ "script": loaded, "args": [] });
        // An error is a check that met the old document on its way out.
        while !matches!(
            self.command("POST", "/execute/sync", Some(body.clone()))
                .await,
            Ok(Value::Bool(true))
        ) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "submitting {selector:?} loaded no page in {COMMAND_TIMEOUT:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Runs `script` as the body of a function called with `args`; returns what it returns.
    pub async fn execute(&self, script: &str, args: Vec<Value>) -> Value {
        let body = json!({ "script": script, "args": args });
        self.expect("POST", "/execute/sync", Some(body)).await
    }

    /// Runs `script` with `args` plus a callback as its last argument; returns what the
    /// script passes to the callback.
    pub async fn execute_async(&self, script: &str, args: Vec<Value>) -> Value {
        let body = json!({ "script": script, "args": args });
        self.expect("POST", "/execute/async", Some(body)).await
    }

    /// Fetches `url` (relative to the current page) with the page's `fetch()`: the browser's
    /// own TLS session and client certificate, as a download link would use them. A page
    /// whose Content-Security-Policy allows no connection (`default-src 'none'`, as the audit
    /// console's) refuses it (`Err("TypeError: Failed to fetch")`) unless the test has called
    /// [`Browser::bypass_csp`]; a download link is followed with a click and
    /// [`Browser::downloaded`] instead.
    pub async fn fetch(&self, url: &str) -> Result<Fetched, String> {
        let script = "const [url, done] = arguments;
            fetch(url, { credentials: 'include' })
                .then(async (r) => done({ status: r.status,
                    contentType: r.headers.get('content-type') || '',
                    body: await r.text() }))
                .catch((e) => done({ error: String(e) }));";
        let value = self.execute_async(script, vec![json!(url)]).await;
        if let Some(error) = value["error"].as_str() {
            return Err(error.to_string());
        }
        Ok(Fetched {
            status: value["status"].as_u64().expect("status") as u16,
            content_type: value["contentType"].as_str().unwrap_or_default().into(),
            body: value["body"].as_str().unwrap_or_default().into(),
        })
    }

    /// A PNG of the viewport.
    pub async fn screenshot(&self) -> Vec<u8> {
        let encoded = string(self.expect("GET", "/screenshot", None).await);
        base64_decode(&encoded)
    }

    /// A PNG of the whole page, beyond the viewport: the document's full height at the
    /// window's width (Chrome DevTools' `Page.captureScreenshot` with a clip of the content
    /// size, through chromedriver), for screenshots of pages longer than the window.
    pub async fn screenshot_page(&self) -> Vec<u8> {
        let metrics = self.cdp("Page.getLayoutMetrics", json!({})).await;
        let size = &metrics["cssContentSize"];
        // The capture lays the page out without a scrollbar, so at the window's whole width
        // (`innerWidth`), which is wider than the content measured beside the scrollbar.
        let window = self.execute("return window.innerWidth;", vec![]).await;
        let (width, height) = (
            size["width"]
                .as_f64()
                .expect("content width")
                .max(window.as_f64().expect("innerWidth")),
            size["height"].as_f64().expect("content height"),
        );
        let params = json!({
            "format": "png",
            "captureBeyondViewport": true,
            "clip": { "x": 0, "y": 0, "width": width, "height": height, "scale": 1 },
        });
        let shot = self.cdp("Page.captureScreenshot", params).await;
        base64_decode(shot["data"].as_str().expect("screenshot data"))
    }

    /// Stops enforcing the pages' Content-Security-Policy from the next page loaded on, so
    /// that [`Browser::fetch`] can read a response's status and headers from a page that
    /// allows no script connection. Only for that: what the policy forbids is a test too.
    pub async fn bypass_csp(&self) {
        self.cdp("Page.setBypassCSP", json!({ "enabled": true }))
            .await;
    }

    /// One Chrome DevTools Protocol command (chromedriver's `goog/cdp/execute`).
    async fn cdp(&self, cmd: &str, params: Value) -> Value {
        let body = json!({ "cmd": cmd, "params": params });
        self.expect("POST", "/goog/cdp/execute", Some(body)).await
    }

    /// Waits until the browser has saved a download named `name` (as the server's
    /// `Content-Disposition` or the link's `download` attribute named it) and returns its
    /// bytes. Chromium writes a `.crdownload` file and renames it once complete.
    pub async fn downloaded(&self, name: &str) -> Vec<u8> {
        let path = self.dir.path().join("downloads").join(name);
        let deadline = tokio::time::Instant::now() + COMMAND_TIMEOUT;
        loop {
            if let Ok(bytes) = std::fs::read(&path) {
                return bytes;
            }
            if tokio::time::Instant::now() >= deadline {
                let saved: Vec<_> = std::fs::read_dir(path.parent().expect("downloads"))
                    .map(|d| d.flatten().map(|e| e.file_name()).collect())
                    .unwrap_or_default();
                panic!("no download {name} in {COMMAND_TIMEOUT:?}; saved: {saved:?}");
            }
            // The download runs in the browser; this only spaces out the checks.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Where this browser keeps its files (for a test that writes a screenshot beside them).
    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    /// Ends the session the polite way, so Chromium flushes and exits before Drop.
    pub async fn quit(mut self) {
        if let Some(session) = self.session.take() {
            let _ = self
                .call("DELETE", &format!("/session/{session}"), None)
                .await;
        }
    }

    async fn find(&self, selector: &str) -> String {
        let body = json!({ "using": "css selector", "value": selector });
        let value = self
            .command("POST", "/element", Some(body))
            .await
            .unwrap_or_else(|e| panic!("find {selector:?}: {e}"));
        element_id(&value)
    }

    async fn find_all(&self, selector: &str) -> Vec<String> {
        let body = json!({ "using": "css selector", "value": selector });
        let value = self.expect("POST", "/elements", Some(body)).await;
        value
            .as_array()
            .unwrap_or_else(|| panic!("elements: {value}"))
            .iter()
            .map(element_id)
            .collect()
    }

    /// A command of the session that must succeed.
    async fn expect(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.command(method, path, body)
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    /// A command of the session: `path` is relative to `/session/{id}`.
    async fn command(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, WebDriverError> {
        let session = self.session.as_deref().expect("open session");
        self.call(method, &format!("/session/{session}{path}"), body)
            .await
    }

    /// One WebDriver request: HTTP/1.1, one connection each, JSON both ways.
    async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, WebDriverError> {
        let request = async {
            let body = body.map(|b| b.to_string()).unwrap_or_default();
            let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await?;
            let head = format!(
                "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                self.port,
                body.len()
            );
            stream.write_all(head.as_bytes()).await?;
            stream.write_all(body.as_bytes()).await?;
            let mut response = Vec::new();
            loop {
                let mut chunk = [0u8; 16 * 1024];
                let n = stream.read(&mut chunk).await?;
                if n == 0 {
                    break;
                }
                response.extend_from_slice(&chunk[..n]);
                if complete(&response) {
                    break;
                }
            }
            Ok::<_, std::io::Error>(response)
        };
        let response = match tokio::time::timeout(COMMAND_TIMEOUT, request).await {
            Ok(Ok(response)) => response,
            Ok(Err(e)) => return Err(driver_error("io", e)),
            Err(_) => {
                return Err(driver_error(
                    "timeout",
                    format!("no answer in {COMMAND_TIMEOUT:?}"),
                ));
            }
        };
        parse_response(&response)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Politely first (Chromium exits and chromedriver forgets it), then the whole process
        // group, which also catches a Chromium that did not listen. Blocking is fine here:
        // chromedriver is another process, not a task of this runtime.
        if let Some(session) = self.session.take() {
            let _ = delete_session_blocking(self.port, &session);
        }
        let group = self.driver.id();
        let _ = Command::new("sh")
            .args(["-c", &format!("kill -KILL -- -{group} 2>/dev/null")])
            .status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn require(program: &Path) {
    assert!(
        program.exists(),
        "{} is missing; the browser tests need it: `{INSTALL}`",
        program.display()
    );
}

fn require_on_path(program: &str) {
    let found = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).any(|dir| dir.join(program).exists()))
        .unwrap_or(false);
    assert!(
        found,
        "{program} is missing; the browser tests need it: `{INSTALL} openssl`"
    );
}

/// Runs a setup program that must succeed, with its stderr in the panic.
fn run(command: &mut Command) {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("run {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `$HOME/.pki/nssdb`, Chromium's certificate store on Linux: the CA trusted to issue
/// server certificates, and the client identity if any.
fn nss_database(home: &Path, ca_pem: &str, identity: Option<&CertPair>) {
    let nssdb = home.join(".pki/nssdb");
    std::fs::create_dir_all(&nssdb).expect("nssdb dir");
    let db = format!("sql:{}", nssdb.display());
    run(Command::new("certutil").args(["-N", "-d", &db, "--empty-password"]));
    let ca = home.join("ca.pem");
    std::fs::write(&ca, ca_pem).expect("write ca.pem");
    // "C,," : a CA trusted to issue TLS server certificates, nothing else.
    run(Command::new("certutil")
        .args(["-A", "-d", &db, "-n", "popgate test CA", "-t", "C,,", "-i"])
        .arg(&ca));
    let Some(identity) = identity else { return };
    let cert = home.join("client.pem");
    let key = home.join("client.key");
    let p12 = home.join("client.p12");
    std::fs::write(&cert, &identity.cert_pem).expect("write client.pem");
    std::fs::write(&key, &identity.key_pem).expect("write client.key");
    run(Command::new("openssl")
        .args(["pkcs12", "-export", "-passout", "pass:", "-name", "client"])
        .arg("-in")
        .arg(&cert)
        .arg("-inkey")
        .arg(&key)
        .arg("-out")
        .arg(&p12));
    run(Command::new("pk12util")
        .args(["-d", &db, "-W", "", "-i"])
        .arg(&p12));
    // The key now lives in the database; the loose copies go.
    for file in [&key, &p12] {
        let _ = std::fs::remove_file(file);
    }
}

/// The profile's preferences: the `auto_select_certificate` content setting (present the one
/// certificate that fits the server's request without asking), and downloads saved in
/// `downloads` without a dialog.
fn preferences(profile: &Path, downloads: &Path) {
    let default = profile.join("Default");
    std::fs::create_dir_all(&default).expect("profile dir");
    let exceptions: serde_json::Map<String, Value> = AUTO_SELECT_FOR
        .iter()
        .map(|origin| {
            // "<primary pattern>,<secondary pattern>", the setting a list of filters: `{}`
            // takes any certificate the server's CA list accepts.
            let setting = json!({ "setting": { "filters": [{}] } });
            (format!("{origin},*"), setting)
        })
        .collect();
    let preferences = json!({
        "profile": { "content_settings": { "exceptions": {
            "auto_select_certificate": exceptions
        } } },
        "download": { "default_directory": downloads, "prompt_for_download": false },
    });
    std::fs::write(default.join("Preferences"), preferences.to_string()).expect("Preferences");
}

/// Reads chromedriver's stdout up to "…started successfully on port N.", then keeps draining
/// it in a thread so a chatty chromedriver never blocks on a full pipe.
fn driver_port(stdout: std::process::ChildStdout) -> u16 {
    let mut lines = BufReader::new(stdout);
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        let n = lines
            .read_line(&mut line)
            .expect("read chromedriver stdout");
        assert!(n > 0, "chromedriver exited before it listened:\n{seen}");
        seen.push_str(&line);
        if let Some(rest) = line.split("started successfully on port ").nth(1) {
            let port = rest
                .trim()
                .trim_end_matches('.')
                .parse()
                .unwrap_or_else(|e| {
                    panic!("chromedriver port in {line:?}: {e}");
                });
            std::thread::spawn(move || std::io::copy(&mut lines, &mut std::io::sink()));
            return port;
        }
    }
}

/// Whether `response` holds the whole head and the `Content-Length` bytes after it.
fn complete(response: &[u8]) -> bool {
    let Some(end) = find(response, b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&response[..end]).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok());
    length.is_some_and(|length| response.len() >= end + 4 + length)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn parse_response(response: &[u8]) -> Result<Value, WebDriverError> {
    let end = find(response, b"\r\n\r\n")
        .ok_or_else(|| driver_error("io", "no HTTP head from chromedriver"))?;
    let head = String::from_utf8_lossy(&response[..end]);
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| driver_error("io", format!("bad status line: {head}")))?;
    let body: Value = serde_json::from_slice(&response[end + 4..])
        .map_err(|e| driver_error("io", format!("not JSON ({e}): {head}")))?;
    let value = body.get("value").cloned().unwrap_or(Value::Null);
    if status == 200 {
        return Ok(value);
    }
    Err(WebDriverError {
        error: value["error"].as_str().unwrap_or("unknown").to_string(),
        message: value["message"].as_str().unwrap_or_default().to_string(),
    })
}

fn driver_error(error: &str, message: impl std::fmt::Display) -> WebDriverError {
    WebDriverError {
        error: error.into(),
        message: message.to_string(),
    }
}

fn delete_session_blocking(port: u16, session: &str) -> std::io::Result<()> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "DELETE /session/{session} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = Vec::new();
    let mut chunk = [0u8; 4096];
    while !complete(&response) {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        response.extend_from_slice(&chunk[..n]);
    }
    Ok(())
}

fn element_id(value: &Value) -> String {
    value[ELEMENT]
        .as_str()
        .unwrap_or_else(|| panic!("not an element: {value}"))
        .to_string()
}

fn string(value: Value) -> String {
    match value {
        Value::String(s) => s,
        other => panic!("expected a string, got {other}"),
    }
}

/// Standard base64 (RFC 4648 §4), as WebDriver sends screenshots; a test helper needs no
/// crate for it.
pub fn base64_decode(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let sextet = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' | b'\r' | b'\n' => continue,
            _ => panic!("not base64: byte {c}"),
        };
        acc = (acc << 6) | u32::from(sextet);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}
