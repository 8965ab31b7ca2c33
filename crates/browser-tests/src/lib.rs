//! A tiny W3C WebDriver client over reqwest, enough to drive the storefront and back
//! office in Chromium the way a person does: open a page, find by CSS selector, click,
//! type, read text, wait, take a screenshot. It starts its own `chromedriver` on a free
//! port, which starts a headless Chromium; both stop when the [`Browser`] is dropped.
//!
//! Chromium and chromedriver are Debian's (`scripts/test.sh` installs them):
//! `/usr/bin/chromium` and `/usr/bin/chromedriver`, or `CHROMIUM` and `CHROMEDRIVER`.

use anyhow::{bail, Context};
use base64::Engine;
use serde_json::{json, Value};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// How long a wait for something on a page lasts before the test fails.
pub const PATIENCE: Duration = Duration::from_secs(40);
/// The key WebDriver names a found element by.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A headless Chromium with its chromedriver, one WebDriver session.
pub struct Browser {
    http: reqwest::Client,
    session: String,
    driver: Child,
}

/// An element found on the page.
#[derive(Debug, Clone)]
pub struct Element {
    id: String,
}

fn program(variable: &str, default: &str) -> String {
    std::env::var(variable).unwrap_or_else(|_| default.to_owned())
}

impl Browser {
    /// Starts chromedriver and a headless Chromium, `width` × `height` CSS pixels.
    pub async fn start(width: u32, height: u32) -> anyhow::Result<Self> {
        let chromedriver = program("CHROMEDRIVER", "/usr/bin/chromedriver");
        let chromium = program("CHROMIUM", "/usr/bin/chromium");
        if !Path::new(&chromedriver).exists() || !Path::new(&chromium).exists() {
            bail!(
                "{chromedriver} or {chromium} is missing: install Debian's chromium and \
                 chromium-driver (scripts/test.sh does)"
            );
        }
        let port = platform::testing::free_port()?;
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group, so that Chromium, its child, is stopped with it.
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {chromedriver}"))?;
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = http.get(format!("{base}/status")).send().await;
            if let Ok(response) = ready {
                let status: Value = response.json().await.unwrap_or_default();
                if status["value"]["ready"] == true {
                    break;
                }
            }
            if Instant::now() > deadline {
                bail!("chromedriver did not get ready on port {port}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--no-first-run", "--lang=en-US",
                         format!("--window-size={width},{height}")],
            }
        }}});
        let created: Value = http
            .post(format!("{base}/session"))
            .json(&capabilities)
            .send()
            .await?
            .json()
            .await?;
        let session = created["value"]["sessionId"]
            .as_str()
            .with_context(|| format!("no WebDriver session: {created}"))?
            .to_owned();
        let browser = Self {
            http,
            session: format!("{base}/session/{session}"),
            driver,
        };
        // Headless windows ignore --window-size on some versions; set the viewport too.
        browser
            .command(
                "POST",
                "/window/rect",
                json!({"width": width, "height": height}),
            )
            .await?;
        browser.driver.id().context("chromedriver exited")?;
        Ok(browser)
    }

    async fn command(&self, method: &str, path: &str, body: Value) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.session);
        let request = match method {
            "GET" => self.http.get(url),
            "DELETE" => self.http.delete(url),
            _ => self.http.post(url).json(&body),
        };
        let response = request.send().await?;
        let status = response.status();
        let reply: Value = response.json().await?;
        if !status.is_success() {
            bail!("WebDriver {method} {path}: {status} {}", reply["value"]);
        }
        Ok(reply["value"].clone())
    }

    /// Opens `url` and waits for its load event.
    pub async fn goto(&self, url: &str) -> anyhow::Result<()> {
        self.command("POST", "/url", json!({ "url": url })).await?;
        Ok(())
    }

    /// The first element matching `css` now, if any.
    pub async fn find_now(&self, css: &str) -> anyhow::Result<Option<Element>> {
        let found = self
            .command(
                "POST",
                "/elements",
                json!({"using": "css selector", "value": css}),
            )
            .await?;
        Ok(found
            .as_array()
            .and_then(|all| all.first())
            .and_then(|e| e[ELEMENT_KEY].as_str())
            .map(|id| Element { id: id.to_owned() }))
    }

    /// The first element matching `css`, waiting up to [`PATIENCE`] for it to appear.
    pub async fn find(&self, css: &str) -> anyhow::Result<Element> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(element) = self.find_now(css).await? {
                return Ok(element);
            }
            if Instant::now() > deadline {
                bail!("no element matches {css}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the text of the first element matching `css` satisfies `expected`,
    /// and returns it.
    pub async fn wait_for_text(
        &self,
        css: &str,
        expected: impl Fn(&str) -> bool,
    ) -> anyhow::Result<String> {
        let deadline = Instant::now() + PATIENCE;
        let mut last = String::new();
        loop {
            if let Some(element) = self.find_now(css).await? {
                // The element may be replaced between finding and reading it.
                if let Ok(text) = self.text(&element).await {
                    if expected(&text) {
                        return Ok(text);
                    }
                    last = text;
                }
            }
            if Instant::now() > deadline {
                bail!("{css} never showed the expected text; last seen {last:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the DOM property `name` of the first element matching `css` is
    /// `expected` (found again on every look, as pages re-render).
    pub async fn wait_for_property(
        &self,
        css: &str,
        name: &str,
        expected: &Value,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + PATIENCE;
        let mut last = Value::Null;
        loop {
            if let Some(element) = self.find_now(css).await? {
                if let Ok(value) = self.property(&element, name).await {
                    if &value == expected {
                        return Ok(());
                    }
                    last = value;
                }
            }
            if Instant::now() > deadline {
                bail!("{css}.{name} never became {expected}; last seen {last}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The element's rendered text.
    pub async fn text(&self, element: &Element) -> anyhow::Result<String> {
        let value = self
            .command("GET", &format!("/element/{}/text", element.id), json!({}))
            .await?;
        Ok(value.as_str().unwrap_or_default().to_owned())
    }

    /// The element's DOM property `name` (e.g. `value`, `disabled`).
    pub async fn property(&self, element: &Element, name: &str) -> anyhow::Result<Value> {
        self.command(
            "GET",
            &format!("/element/{}/property/{name}", element.id),
            json!({}),
        )
        .await
    }

    /// Clicks the first element matching `css` once it is there.
    pub async fn click(&self, css: &str) -> anyhow::Result<()> {
        let element = self.find(css).await?;
        self.command("POST", &format!("/element/{}/click", element.id), json!({}))
            .await?;
        Ok(())
    }

    /// Replaces the value of the input matching `css` with `text`, as typed.
    pub async fn fill(&self, css: &str, text: &str) -> anyhow::Result<()> {
        let element = self.find(css).await?;
        self.command("POST", &format!("/element/{}/clear", element.id), json!({}))
            .await?;
        self.command(
            "POST",
            &format!("/element/{}/value", element.id),
            json!({ "text": text }),
        )
        .await?;
        Ok(())
    }

    /// Runs `script` (a function body; `arguments` holds `args`) and returns its result.
    pub async fn script(&self, script: &str, args: Value) -> anyhow::Result<Value> {
        self.command(
            "POST",
            "/execute/sync",
            json!({"script": script, "args": args}),
        )
        .await
    }

    /// Resizes the window to `width` × `height` CSS pixels (a phone is 390 × 844).
    pub async fn resize(&self, width: u32, height: u32) -> anyhow::Result<()> {
        self.command(
            "POST",
            "/window/rect",
            json!({"width": width, "height": height}),
        )
        .await?;
        Ok(())
    }

    /// The current URL.
    pub async fn url(&self) -> anyhow::Result<String> {
        let value = self.command("GET", "/url", json!({})).await?;
        Ok(value.as_str().unwrap_or_default().to_owned())
    }

    /// A PNG of the viewport, written to `path`.
    pub async fn screenshot(&self, path: &Path) -> anyhow::Result<()> {
        let value = self.command("GET", "/screenshot", json!({})).await?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(value.as_str().context("screenshot is not base64 text")?)?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, png)?;
        Ok(())
    }

    /// Ends the session (Chromium quits), then chromedriver.
    pub async fn quit(mut self) -> anyhow::Result<()> {
        let ended = self.command("DELETE", "", json!({})).await;
        self.kill_group();
        self.driver.wait().await?;
        ended.map(|_| ())
    }

    /// SIGKILL to chromedriver's process group: chromedriver and every Chromium process.
    fn kill_group(&mut self) {
        if let Some(pid) = self.driver.id() {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .stderr(Stdio::null())
                .status();
        }
    }
}

impl Drop for Browser {
    /// A test that fails half-way leaves no browser behind.
    fn drop(&mut self) {
        self.kill_group();
    }
}
