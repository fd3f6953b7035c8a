//! The console in a real browser: Debian's headless chromium, driven over
//! WebDriver (chromedriver, started here on a free loopback port) by
//! fantoccini, against a real node loaded with the demo data set. Each
//! page's names and numbers are compared with what `/v1` answers, and the
//! browser's own log is the collector of script errors and failed requests.

use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

use crate::bus::{start_node, Node};
use crate::http_client;
use crate::nats_cluster::reserved_port;
use crate::nats_server::NatsServer;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Demo ids (`src/demo.rs`): 陈立新, who serves in both cities; 金宇生物's
/// workstation; 北方稀土's demand.
const COMMISSIONER: &str = "7e9a1000-0001-4000-8000-000000000001";
const WORKSTATION: &str = "7e9a1000-0002-4000-8000-000000000001";
const DEMAND: &str = "7e9a1000-0005-4000-8000-000000000001";

/// chromedriver as a child in a process group of its own, which the
/// browsers it starts join; the whole group is killed on drop, so a failed
/// test leaves no chromium behind.
struct Driver {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A node of the test's own: its nats-server, data directory and tasks.
struct OwnNode {
    _nats: NatsServer,
    _data: tempfile::TempDir,
    node: Node,
}

/// A browser pointed at a node's console: a node with the demo data set,
/// or one already running elsewhere.
struct Console {
    own: Option<OwnNode>,
    http: SocketAddr,
    _profile: tempfile::TempDir,
    driver: Driver,
    session: String,
    browser: Client,
}

async fn start_driver() -> Driver {
    assert!(
        Path::new(CHROMEDRIVER).exists() && Path::new(CHROMIUM).exists(),
        "the console tests need Debian's chromium and chromedriver: \
         `apt-get install chromium chromium-driver` (.ci/run does it)"
    );
    let port = reserved_port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let driver = Driver { child, addr };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "chromedriver did not listen"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    driver
}

impl Console {
    async fn start() -> Self {
        let nats = NatsServer::start();
        let data = tempfile::tempdir().unwrap();
        let node = start_node(&nats, data.path()).await;
        // The demo waits until the views have caught up before it returns.
        tepai::demo::load(&tepai::config::NatsOptions::plain(nats.url()), false)
            .await
            .unwrap();
        let http = node.http;
        let own = OwnNode {
            _nats: nats,
            _data: data,
            node,
        };
        Self::attach(http, Some(own)).await
    }

    /// A browser for the console at `http`.
    async fn attach(http: SocketAddr, own: Option<OwnNode>) -> Self {
        let driver = start_driver().await;
        let profile = tempfile::tempdir().unwrap();
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": CHROMIUM,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--lang=zh-CN",
                    "--window-size=1280,800",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }),
        );
        // The browser's log: script errors, CSP refusals and failed loads.
        capabilities.insert("goog:loggingPrefs".into(), json!({ "browser": "ALL" }));
        let browser = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://{}", driver.addr))
            .await
            .unwrap();
        let session = browser.session_id().await.unwrap().unwrap();
        let console = Self {
            own,
            http,
            _profile: profile,
            driver,
            session,
            browser,
        };
        console.viewport(1280, 800).await;
        console
    }

    /// A WebDriver extension command the client has no method for.
    async fn driver_post(&self, path: &str, body: Value) -> Value {
        use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
        let body = body.to_string();
        let request = format!(
            "POST /session/{}/{path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.session,
            // chromedriver answers only a loopback Host.
            self.driver.addr,
            body.len()
        );
        let mut stream = tokio::net::TcpStream::connect(self.driver.addr)
            .await
            .unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        // chromedriver keeps the connection open: read as far as its length.
        let mut reader = tokio::io::BufReader::new(stream);
        let mut length = 0;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).await.unwrap();
            let line = line.trim_end().to_ascii_lowercase();
            if line.is_empty() {
                break;
            }
            if let Some(value) = line.strip_prefix("content-length:") {
                length = value.trim().parse().unwrap();
            }
        }
        let mut answer = vec![0; length];
        reader.read_exact(&mut answer).await.unwrap();
        let answer: Value = serde_json::from_slice(&answer).unwrap();
        answer["value"].clone()
    }

    /// Sets the page's viewport exactly (a window size would include the
    /// browser's frame); 390 wide is a phone, with touch and its scale.
    async fn viewport(&self, width: u32, height: u32) {
        let mobile = width < 600;
        self.driver_post(
            "goog/cdp/execute",
            json!({
                "cmd": "Emulation.setDeviceMetricsOverride",
                "params": { "width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile },
            }),
        )
        .await;
    }

    /// The browser log's errors since the last call.
    async fn errors(&self) -> Vec<String> {
        let entries = self
            .driver_post("se/log", json!({ "type": "browser" }))
            .await;
        entries
            .as_array()
            .unwrap_or_else(|| panic!("no browser log: {entries}"))
            .iter()
            .filter(|e| e["level"] != "DEBUG" && e["level"] != "INFO")
            .map(|e| e["message"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    fn url(&self, hash: &str) -> String {
        format!("http://{}/{hash}", self.http)
    }

    async fn api(&self, path: &str) -> Value {
        let response = http_client::get(self.http, path).await;
        assert_eq!(response.status, 200, "{path}: {}", response.body);
        response.json()
    }

    async fn renders(&self) -> u64 {
        let value = self
            .browser
            .execute("return document.body.dataset.renders || '0';", vec![])
            .await
            .unwrap();
        value.as_str().unwrap().parse().unwrap()
    }

    /// Waits until a render after the `before`th has finished; its state.
    async fn rendered_after(&self, before: u64) -> String {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let state = self
                .browser
                .execute(
                    "return [document.body.dataset.renders || '0', document.body.dataset.state];",
                    vec![],
                )
                .await
                .unwrap();
            let renders: u64 = state[0].as_str().unwrap().parse().unwrap();
            let state = state[1].as_str().unwrap_or_default().to_owned();
            if renders > before && state != "loading" {
                return state;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the page did not render"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Opens `hash` as a fresh page load and waits for its render.
    async fn open(&self, hash: &str) -> String {
        self.browser.goto("about:blank").await.unwrap();
        self.browser.goto(&self.url(hash)).await.unwrap();
        self.rendered_after(0).await
    }

    /// Runs `action`, then waits for the render it causes.
    async fn after<F: std::future::Future<Output = ()>>(&self, action: F) -> String {
        let before = self.renders().await;
        action.await;
        self.rendered_after(before).await
    }

    /// Clicks the element `css` finds and waits for the page it leads to;
    /// the page's state after it ("ready" or "error").
    async fn click(&self, css: &str) -> String {
        let element = self.browser.find(Locator::Css(css)).await.unwrap();
        self.after(async { element.click().await.unwrap() }).await
    }

    async fn texts(&self, css: &str) -> Vec<String> {
        let mut out = Vec::new();
        for element in self.browser.find_all(Locator::Css(css)).await.unwrap() {
            out.push(element.text().await.unwrap().trim().to_owned());
        }
        out
    }

    async fn attrs(&self, css: &str, attr: &str) -> Vec<String> {
        let mut out = Vec::new();
        for element in self.browser.find_all(Locator::Css(css)).await.unwrap() {
            out.push(element.attr(attr).await.unwrap().unwrap_or_default());
        }
        out
    }

    async fn text(&self, css: &str) -> String {
        let texts = self.texts(css).await;
        assert_eq!(texts.len(), 1, "{css} matched {texts:?}");
        texts[0].clone()
    }

    async fn stop(self) {
        let _ = self.browser.close().await;
        if let Some(own) = self.own {
            own.node.stop().await;
        }
    }
}

/// A number as the console prints it (thousands separators) back to digits.
/// The `post_id` of each element of the array `list`.
fn post_ids(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|a| a["post_id"].as_str().unwrap())
        .collect()
}

fn digits(text: &str) -> String {
    text.chars().filter(|c| c.is_ascii_digit()).collect()
}

fn number(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Every page, as a file name and its route.
fn pages() -> Vec<(&'static str, String)> {
    vec![
        ("overview", "#/".to_owned()),
        ("assignments", "#/assignments".to_owned()),
        ("commissioner", format!("#/commissioner/{COMMISSIONER}")),
        ("workstation", format!("#/workstation/{WORKSTATION}")),
        ("demands", "#/demands".to_owned()),
        ("demand", format!("#/demand/{DEMAND}")),
        ("assessment", "#/assessment".to_owned()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_loads_clean_and_shows_the_apis_names_and_numbers() {
    let c = Console::start().await;
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/console");
    std::fs::create_dir_all(&shots).unwrap();
    for (width, height) in [(1280, 800), (390, 844)] {
        c.viewport(width, height).await;
        for (name, hash) in pages() {
            assert_eq!(c.open(&hash).await, "ready", "{name} did not render");
            let errors = c.errors().await;
            assert!(errors.is_empty(), "{name} at {width}: {errors:?}");
            let png = c.browser.screenshot().await.unwrap();
            std::fs::write(shots.join(format!("{name}-{width}x{height}.png")), png).unwrap();
        }
    }
    c.viewport(1280, 800).await;

    // Overview: every cell and the totals, as the city matrix answers.
    c.open("#/").await;
    let matrix = c.api("/v1/city-matrix").await;
    let mut posts = 0;
    for cell in matrix["cells"].as_array().unwrap() {
        let key = format!(
            "td[data-cell='{}-{}']",
            cell["home_city"].as_str().unwrap(),
            cell["serving_city"].as_str().unwrap()
        );
        assert_eq!(
            c.text(&format!("{key} .posts")).await,
            number(&cell["active_posts"])
        );
        assert_eq!(
            c.text(&format!("{key} .hours")).await,
            number(&cell["hours_per_month"])
        );
        assert_eq!(
            digits(&c.text(&format!("{key} .minutes")).await),
            number(&cell["service_minutes"])
        );
        posts += cell["active_posts"].as_u64().unwrap();
    }
    assert!(posts > 0, "the demo has posts today");
    let all = c.text("td[data-sum='all']").await;
    assert!(all.starts_with(&format!("{posts} 岗")), "{all}");
    assert_eq!(
        digits(&c.text("[data-total='posts'] .stat-value").await),
        posts.to_string()
    );

    // Assignments: the rows, in order, with names and hours.
    c.open("#/assignments").await;
    let page = c.api("/v1/assignments").await;
    let rows = page["assignments"].as_array().unwrap();
    assert!(!rows.is_empty());
    let ids = post_ids(&page["assignments"]);
    assert_eq!(c.attrs("tr[data-post]", "data-post").await, ids);
    let names: Vec<&str> = rows
        .iter()
        .map(|a| a["commissioner_name"].as_str().unwrap())
        .collect();
    assert_eq!(c.texts("tr[data-post] a.commissioner").await, names);
    let hours: Vec<String> = rows.iter().map(|a| number(&a["hours_per_month"])).collect();
    assert_eq!(c.texts("tr[data-post] td.hours").await, hours);

    // The page's CSV link answers the same rows.
    let href = c
        .browser
        .find(Locator::Css("a[download='assignments.csv']"))
        .await
        .unwrap()
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    let csv = http_client::get(c.http, &href).await;
    assert_eq!(csv.status, 200);
    assert!(csv.head.contains("content-type: text/csv"), "{}", csv.head);
    assert_eq!(csv.body.lines().count(), rows.len() + 1);
    assert!(csv.body.lines().nth(1).unwrap().starts_with(ids[0]));

    // The console's own files: their types, and a CSP that allows only
    // the node itself.
    for (path, kind) in [
        ("/", "text/html"),
        ("/console/app.js", "text/javascript"),
        ("/console/style.css", "text/css"),
        ("/console/icon.svg", "image/svg+xml"),
    ] {
        let response = http_client::get(c.http, path).await;
        assert_eq!(response.status, 200, "{path}");
        assert!(
            response.head.contains(&format!("content-type: {kind}")),
            "{path}: {}",
            response.head
        );
        assert!(
            response
                .head
                .contains("content-security-policy: default-src 'none'; script-src 'self';"),
            "{path}: {}",
            response.head
        );
    }
    assert_eq!(
        http_client::get(c.http, "/console/nope.js").await.status,
        404
    );

    // A commissioner and a workstation: name, totals and posts.
    for (hash, path) in [
        (
            format!("#/commissioner/{COMMISSIONER}"),
            format!("/v1/commissioners/{COMMISSIONER}"),
        ),
        (
            format!("#/workstation/{WORKSTATION}"),
            format!("/v1/workstations/{WORKSTATION}"),
        ),
    ] {
        c.open(&hash).await;
        let detail = c.api(&path).await;
        let title = c.text("h1").await;
        assert!(
            title.starts_with(detail["name"].as_str().unwrap()),
            "{title}"
        );
        let shown_posts = c.text("[data-total='posts'] .stat-value").await;
        assert!(
            shown_posts.starts_with(&number(&detail["active_posts"])),
            "{shown_posts}"
        );
        assert_eq!(
            digits(&c.text("[data-total='minutes'] .stat-value").await),
            number(&detail["service_minutes"])
        );
        let ids = post_ids(&detail["posts"]);
        assert_eq!(c.attrs("tr[data-post]", "data-post").await, ids);
        // Service by month: the API's months, in its order, with its minutes.
        let months = detail["service_by_month"].as_array().unwrap();
        // 陈立新 served the demo's demand; 金宇生物's station has no record.
        assert_eq!(
            months.is_empty(),
            path.contains("/workstations/"),
            "service by month: {detail}"
        );
        let shown: Vec<String> = c.attrs("tr[data-month]", "data-month").await;
        let wanted: Vec<&str> = months
            .iter()
            .map(|m| m["month"].as_str().unwrap())
            .collect();
        assert_eq!(shown, wanted);
        let minutes: Vec<String> = months.iter().map(|m| number(&m["minutes"])).collect();
        let shown_minutes: Vec<String> = c
            .texts("tr[data-month] td.minutes")
            .await
            .iter()
            .map(|t| digits(t))
            .collect();
        assert_eq!(shown_minutes, minutes);
    }

    // The demands board: each demand in its status's column.
    c.open("#/demands").await;
    let board = c.api("/v1/demands").await;
    for (key, code) in [
        ("open", "DEMAND_OPEN"),
        ("dispatched", "DEMAND_DISPATCHED"),
        ("resolved", "DEMAND_RESOLVED"),
        ("withdrawn", "DEMAND_WITHDRAWN"),
    ] {
        let want: Vec<&str> = board["demands"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["status"] == code)
            .map(|d| d["demand_id"].as_str().unwrap())
            .collect();
        let shown = c
            .attrs(
                &format!("[data-status='{key}'] [data-demand]"),
                "data-demand",
            )
            .await;
        assert_eq!(shown, want, "column {key}");
    }

    // A demand's candidates.
    c.open(&format!("#/demand/{DEMAND}")).await;
    let candidates = c.api(&format!("/v1/demands/{DEMAND}/candidates")).await;
    let names: Vec<&str> = candidates["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    assert!(!names.is_empty());
    assert_eq!(c.texts("tr[data-candidate] a.commissioner").await, names);

    // The assessment of the date's year: rows and points.
    c.open("#/assessment").await;
    let year = matrix["on_date"].as_str().unwrap()[..4].to_owned();
    let assessment = c.api(&format!("/v1/assessment?year={year}")).await;
    let rows = assessment["rows"].as_array().unwrap();
    assert!(!rows.is_empty());
    let ids: Vec<&str> = rows
        .iter()
        .map(|r| r["subject_id"].as_str().unwrap())
        .collect();
    assert_eq!(c.attrs("tr[data-subject]", "data-subject").await, ids);
    let points: Vec<String> = rows.iter().map(|r| number(&r["points"])).collect();
    assert_eq!(c.texts("tr[data-subject] td.points").await, points);
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filter_a_link_and_the_history_slider_change_what_is_shown() {
    let c = Console::start().await;

    // A filter: serving city 包头, chosen in the form and submitted.
    c.open("#/assignments").await;
    let all = c.attrs("tr[data-post]", "data-post").await;
    let select = c
        .browser
        .find(Locator::Css("select[name='serving_city']"))
        .await
        .unwrap();
    select.select_by_value("150200").await.unwrap();
    assert_eq!(c.click("form.filters button[type='submit']").await, "ready");
    let filtered = c.api("/v1/assignments?serving_city=150200").await;
    let want = post_ids(&filtered["assignments"]);
    let shown = c.attrs("tr[data-post]", "data-post").await;
    assert_eq!(shown, want);
    assert!(
        !shown.is_empty() && shown.len() < all.len(),
        "{shown:?} of {all:?}"
    );
    assert!(c
        .browser
        .current_url()
        .await
        .unwrap()
        .as_str()
        .contains("serving_city=150200"));

    // A link: the matrix cell Hohhot → Baotou opens its assignments, and an
    // assignment opens its commissioner.
    c.open("#/").await;
    let matrix = c.api("/v1/city-matrix").await;
    assert_eq!(c.click("td[data-cell='150100-150200'] a").await, "ready");
    let on_date = matrix["on_date"].as_str().unwrap();
    let cross = c
        .api(&format!(
            "/v1/assignments?home_city=150100&serving_city=150200&status=active&on_date={on_date}"
        ))
        .await;
    let want = post_ids(&cross["assignments"]);
    let cell_posts = matrix["cells"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["home_city"] == "150100" && x["serving_city"] == "150200")
        .unwrap()["active_posts"]
        .as_u64()
        .unwrap();
    assert_eq!(
        want.len() as u64,
        cell_posts,
        "the cell counts its assignments"
    );
    assert_eq!(c.attrs("tr[data-post]", "data-post").await, want);
    let first = &cross["assignments"][0];
    assert_eq!(c.click("tr[data-post] a.commissioner").await, "ready");
    let title = c.text("h1").await;
    assert!(
        title.starts_with(first["commissioner_name"].as_str().unwrap()),
        "{title}"
    );

    // A demand opens its candidates.
    c.open("#/demands").await;
    assert_eq!(
        c.click(&format!("[data-demand='{DEMAND}'] h3 a")).await,
        "ready"
    );
    let candidates = c.api(&format!("/v1/demands/{DEMAND}/candidates")).await;
    let ids: Vec<&str> = candidates["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["commissioner_id"].as_str().unwrap())
        .collect();
    assert_eq!(c.attrs("tr[data-candidate]", "data-candidate").await, ids);

    // The history slider: an earlier position shows the matrix as it was.
    c.open("#/").await;
    let head = matrix["as_of_position"]
        .as_str()
        .unwrap()
        .parse::<u64>()
        .unwrap();
    let total = |m: &Value| -> u64 {
        m["cells"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["active_posts"].as_u64().unwrap())
            .sum()
    };
    let mut earlier = None;
    for position in (1..head).rev() {
        let then = c
            .api(&format!("/v1/city-matrix?as_of_position={position}"))
            .await;
        if total(&then) != total(&matrix) && total(&then) > 0 {
            earlier = Some((position, total(&then)));
            break;
        }
    }
    let (position, then_posts) = earlier.expect("the demo's history changes the matrix");
    let moved = c
        .after(async {
            c.browser
                .execute(
                    "const s = document.getElementById('history'); s.value = arguments[0]; \
                     s.dispatchEvent(new Event('change'));",
                    vec![json!(position.to_string())],
                )
                .await
                .unwrap();
        })
        .await;
    assert_eq!(moved, "ready");
    assert!(c
        .browser
        .current_url()
        .await
        .unwrap()
        .as_str()
        .contains(&format!("as_of_position={position}")));
    assert_eq!(
        digits(&c.text("[data-total='posts'] .stat-value").await),
        then_posts.to_string()
    );
    let label = c.text("#history-label").await;
    assert!(label.contains(&position.to_string()), "{label}");
    // And back to the head with the keyboard: End on the slider.
    let slider = c.browser.find(Locator::Css("#history")).await.unwrap();
    let back = c
        .after(async { slider.send_keys("\u{e010}").await.unwrap() })
        .await;
    assert_eq!(back, "ready");
    assert_eq!(
        digits(&c.text("[data-total='posts'] .stat-value").await),
        total(&matrix).to_string()
    );
    let errors = c.errors().await;
    assert!(errors.is_empty(), "{errors:?}");
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_keyboard_alone_reaches_every_control_and_bad_input_shows_the_apis_message() {
    let c = Console::start().await;
    for (name, hash) in pages() {
        c.open(&hash).await;
        // Number every control a person could use, then Tab until focus
        // comes back round, and see that each one was reached.
        let controls = c
            .browser
            .execute(
                "let n = 0; for (const e of document.querySelectorAll(\
                 'a[href], button, input, select, textarea, [tabindex=\"0\"]')) {\
                 if (e.getClientRects().length) e.dataset.kb = String(++n); } return n;",
                vec![],
            )
            .await
            .unwrap()
            .as_u64()
            .unwrap();
        assert!(controls > 5, "{name} has {controls} controls");
        let mut reached = std::collections::BTreeSet::new();
        let mut first = None;
        // A date input takes a Tab per part (year, month, day), so focus
        // may stay on one control for a few presses.
        for _ in 0..(controls * 4 + 10) {
            let active = c.browser.active_element().await.unwrap();
            active.send_keys("\u{e004}").await.unwrap();
            let kb = c
                .browser
                .execute("return document.activeElement.dataset.kb || '';", vec![])
                .await
                .unwrap();
            let kb = kb.as_str().unwrap_or_default().to_owned();
            if kb.is_empty() {
                continue;
            }
            if first.is_none() {
                first = Some(kb.clone());
            } else if first.as_ref() == Some(&kb) && reached.len() > 1 {
                break;
            }
            reached.insert(kb);
        }
        assert_eq!(
            reached.len() as u64,
            controls,
            "{name}: Tab reached {reached:?}"
        );
    }

    // Bad parameters in a page's URL: the API's own message, on the page.
    for (hash, api) in [
        (
            "#/assignments?status=bogus",
            "/v1/assignments?status=bogus".to_owned(),
        ),
        (
            "#/?on_date=2026-13-45",
            "/v1/city-matrix?on_date=2026-13-45".to_owned(),
        ),
        (
            "#/commissioner/not-an-id",
            "/v1/commissioners/not-an-id".to_owned(),
        ),
        (
            "#/assessment?year=abc",
            "/v1/assessment?year=abc".to_owned(),
        ),
        ("#/demands?colour=red", "/v1/demands?colour=red".to_owned()),
    ] {
        assert_eq!(c.open(hash).await, "error", "{hash}");
        let response = http_client::get(c.http, &api).await;
        assert_eq!(response.status, 400, "{api}");
        let message = response.json()["message"].as_str().unwrap().to_owned();
        assert_eq!(c.text(".error .message").await, message, "{hash}");
    }
    c.stop().await;
}

/// First render of every page, in the browser, against a node that is
/// already running (`TEPAI_CONSOLE_ADDR=127.0.0.1:8080`), e.g. one loaded
/// with 100,000 commissioners (BENCHMARKS.md, "Console"). Prints, per
/// page, the Navigation Timing figures of fresh loads: the document's
/// `responseEnd` and `domContentLoadedEventEnd`, and the console's
/// `tepai-rendered` mark, set once the page's data is drawn, and (Resource
/// Timing) the slowest of its `/v1` calls. Ignored:
/// it measures, it does not judge.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement against a running node; see BENCHMARKS.md"]
async fn first_render_of_every_page() {
    let addr: SocketAddr = std::env::var("TEPAI_CONSOLE_ADDR")
        .expect("TEPAI_CONSOLE_ADDR names the node to measure")
        .parse()
        .unwrap();
    let on_date = std::env::var("TEPAI_CONSOLE_DATE").unwrap_or_default();
    let rounds: usize = std::env::var("TEPAI_CONSOLE_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let c = Console::attach(addr, None).await;
    let date = if on_date.is_empty() {
        String::new()
    } else {
        format!("?on_date={on_date}")
    };
    // The busiest commissioner and workstation of the first page on that date.
    let first = c.api(&format!("/v1/assignments{date}")).await;
    let first = &first["assignments"][0];
    let status = c.api("/v1/status").await;
    println!(
        "node {addr}, head {}, date {on_date:?}",
        status["last_position"]
    );
    println!("page          responseEnd  DOMContentLoaded  rendered: median   max  slowest /v1 call (ms, medians of {rounds} fresh loads)");
    for (name, path) in [
        ("overview", "#/".to_owned()),
        ("assignments", "#/assignments".to_owned()),
        (
            "commissioner",
            format!(
                "#/commissioner/{}",
                first["commissioner_id"].as_str().unwrap()
            ),
        ),
        (
            "workstation",
            format!(
                "#/workstation/{}",
                first["workstation_id"].as_str().unwrap()
            ),
        ),
        ("demands", "#/demands".to_owned()),
        ("demand", format!("#/demand/{DEMAND}")),
        ("assessment", "#/assessment".to_owned()),
    ] {
        let hash = format!("{path}{date}");
        let mut rendered = Vec::new();
        let mut response = Vec::new();
        let mut loaded = Vec::new();
        let mut api = Vec::new();
        for _ in 0..rounds {
            c.open(&hash).await;
            let t = c
                .browser
                .execute(
                    "const n = performance.getEntriesByType('navigation')[0]; \
                     const m = performance.getEntriesByName('tepai-rendered'); \
                     const api = performance.getEntriesByType('resource')\
                       .filter((r) => r.name.includes('/v1/') && !r.name.includes('/v1/status'))\
                       .reduce((a, r) => Math.max(a, r.responseEnd - r.startTime), 0); \
                     return [n.responseEnd, n.domContentLoadedEventEnd, m.length ? m[0].startTime : -1, api];",
                    vec![],
                )
                .await
                .unwrap();
            response.push(t[0].as_f64().unwrap());
            loaded.push(t[1].as_f64().unwrap());
            rendered.push(t[2].as_f64().unwrap());
            api.push(t[3].as_f64().unwrap());
        }
        for v in [&mut response, &mut loaded, &mut rendered, &mut api] {
            v.sort_by(f64::total_cmp);
        }
        let median = |v: &[f64]| v[v.len() / 2];
        println!(
            "{name:<13} {:>11.0}  {:>16.0}  {:>16.0}  {:>4.0}  {:>16.0}",
            median(&response),
            median(&loaded),
            median(&rendered),
            rendered[rendered.len() - 1],
            median(&api)
        );
    }
    c.stop().await;
}
