//! A minimal W3C WebDriver client over plain HTTP, enough to drive the desktop app through
//! `tauri-driver` and WebKitWebDriver: find, click, type, read, run a script, take a
//! screenshot, and wait for the UI to get somewhere.
#![allow(dead_code)]

use base64::Engine;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// One WebDriver session.
pub struct WebDriver {
    http: reqwest::blocking::Client,
    base: String,
}

/// An element of the page.
#[derive(Clone)]
pub struct Element {
    id: String,
}

impl WebDriver {
    /// Starts a session for the app at `application` on the driver at `driver_url`.
    pub fn start(driver_url: &str, application: &str) -> WebDriver {
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .unwrap();
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "tauri:options": {"application": application}
        }}});
        let deadline = Instant::now() + Duration::from_secs(60);
        let answer: Value = loop {
            match http
                .post(format!("{driver_url}/session"))
                .json(&capabilities)
                .send()
            {
                Ok(response) => break response.json().unwrap(),
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(200))
                }
                Err(e) => panic!("tauri-driver at {driver_url} not answering: {e}"),
            }
        };
        let id = answer["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {answer}"))
            .to_owned();
        WebDriver {
            http,
            base: format!("{driver_url}/session/{id}"),
        }
    }

    fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer: Value = request.send().unwrap().json().unwrap();
        answer["value"].clone()
    }

    fn post(&self, path: &str, body: Value) -> Value {
        self.call(reqwest::Method::POST, path, Some(body))
    }

    /// The open windows' handles.
    pub fn window_handles(&self) -> Vec<String> {
        let handles = self.call(reqwest::Method::GET, "/window/handles", None);
        handles
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|h| h.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Closes the current window (as its close button does); returns what WebDriver answered.
    pub fn close_window(&self) -> Value {
        self.call(reqwest::Method::DELETE, "/window", None)
    }

    /// Waits up to `secs` for a window to exist and drives it from then on.
    pub fn wait_window(&self, secs: u64) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(handle) = self.window_handles().into_iter().next() {
                self.post("/window", json!({"handle": handle}));
                return handle;
            }
            assert!(Instant::now() < deadline, "no window within {secs} s");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The first element matching `css`, if there is one now.
    pub fn try_find(&self, css: &str) -> Option<Element> {
        let found = self.post("/element", json!({"using": "css selector", "value": css}));
        found[ELEMENT]
            .as_str()
            .map(|id| Element { id: id.to_owned() })
    }

    /// Every element matching `css` now.
    pub fn find_all(&self, css: &str) -> Vec<Element> {
        let found = self.post("/elements", json!({"using": "css selector", "value": css}));
        found
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e[ELEMENT].as_str())
                    .map(|id| Element { id: id.to_owned() })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Waits up to `secs` for an element matching `css`.
    pub fn wait(&self, css: &str, secs: u64) -> Element {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(e) = self.try_find(css) {
                return e;
            }
            assert!(
                Instant::now() < deadline,
                "no {css:?} within {secs} s; the page says:\n{}",
                self.page_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits up to `secs` until the text of `css` contains `needle`; returns the text.
    pub fn wait_text(&self, css: &str, needle: &str, secs: u64) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(e) = self.try_find(css) {
                let text = self.text(&e);
                if text.contains(needle) {
                    return text;
                }
            }
            assert!(
                Instant::now() < deadline,
                "{css:?} did not say {needle:?} within {secs} s; the page says:\n{}",
                self.page_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits up to `secs` until exactly `n` elements match `css`; returns them.
    pub fn wait_count(&self, css: &str, n: usize, secs: u64) -> Vec<Element> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let found = self.find_all(css);
            if found.len() == n {
                return found;
            }
            assert!(
                Instant::now() < deadline,
                "{} elements match {css:?} after {secs} s, not {n}; the page says:\n{}",
                found.len(),
                self.page_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits up to `secs` until nothing matches `css`.
    pub fn wait_gone(&self, css: &str, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while self.try_find(css).is_some() {
            assert!(
                Instant::now() < deadline,
                "{css:?} still there after {secs} s; the page says:\n{}",
                self.page_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Clicks `element`.
    pub fn click(&self, element: &Element) {
        self.post(&format!("/element/{}/click", element.id), json!({}));
    }

    /// Waits for `css` and clicks it; if the page redrew it between the find and the click
    /// (a pushed update), finds it again.
    pub fn click_css(&self, css: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let e = self.wait(css, 20);
            let answer = self.post(&format!("/element/{}/click", e.id), json!({}));
            match answer["error"].as_str() {
                None => return,
                Some("stale element reference") if Instant::now() < deadline => continue,
                Some(error) => panic!("clicking {css:?}: {error}: {answer}"),
            }
        }
    }

    /// Types `text` into `css` (after clearing it).
    pub fn type_into(&self, css: &str, text: &str) {
        let e = self.wait(css, 20);
        self.post(&format!("/element/{}/clear", e.id), json!({}));
        self.post(&format!("/element/{}/value", e.id), json!({"text": text}));
    }

    /// The rendered text of `element`.
    pub fn text(&self, element: &Element) -> String {
        self.call(
            reqwest::Method::GET,
            &format!("/element/{}/text", element.id),
            None,
        )
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }

    /// The text of the first element matching `css` (waiting for it).
    pub fn text_of(&self, css: &str) -> String {
        let e = self.wait(css, 20);
        self.text(&e)
    }

    /// An attribute of `css`.
    pub fn attribute(&self, css: &str, name: &str) -> Option<String> {
        let e = self.wait(css, 20);
        self.call(
            reqwest::Method::GET,
            &format!("/element/{}/attribute/{name}", e.id),
            None,
        )
        .as_str()
        .map(str::to_owned)
    }

    /// Runs `script` in the page and returns its value.
    pub fn execute(&self, script: &str) -> Value {
        self.post("/execute/sync", json!({"script": script, "args": []}))
    }

    /// Runs `script` as an async script (its last argument is the callback) and returns
    /// what it passed to the callback.
    pub fn execute_async(&self, script: &str) -> Value {
        self.post("/execute/async", json!({"script": script, "args": []}))
    }

    /// Everything the page shows, for failure messages.
    pub fn page_text(&self) -> String {
        self.execute("return document.body ? document.body.innerText : ''")
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// A PNG of the window's content.
    pub fn screenshot(&self) -> Vec<u8> {
        let b64 = self.call(reqwest::Method::GET, "/screenshot", None);
        base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap_or_default())
            .unwrap()
    }

    /// Ends the session (the app quits).
    pub fn quit(&self) {
        let _ = self.http.delete(&self.base).send();
    }
}
