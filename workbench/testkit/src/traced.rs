//! Requests as the tests make them: the answer's status, its `traceresponse`, its JSON body.

/// The `traceresponse` header, `00-<trace-id>-<span-id>-<flags>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceResponse {
    pub trace_id: String,
    pub span_id: String,
    pub flags: String,
}

/// Parses `traceresponse`, asserting its shape; `None` when the answer has none.
pub fn traceresponse(response: &reqwest::Response) -> Option<TraceResponse> {
    let value = response
        .headers()
        .get("traceresponse")?
        .to_str()
        .ok()?
        .to_owned();
    let parts: Vec<&str> = value.split('-').collect();
    assert!(
        parts.len() == 4
            && parts[0] == "00"
            && parts[1].len() == 32
            && parts[2].len() == 16
            && parts[3].len() == 2,
        "malformed traceresponse: {value}"
    );
    Some(TraceResponse {
        trace_id: parts[1].to_owned(),
        span_id: parts[2].to_owned(),
        flags: parts[3].to_owned(),
    })
}

#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub trace: Option<TraceResponse>,
    pub body: serde_json::Value,
}

impl Answer {
    /// The trace id, for answers that must be traced.
    pub fn trace_id(&self) -> String {
        self.trace
            .as_ref()
            .expect("a traced answer carries traceresponse")
            .trace_id
            .clone()
    }
}

/// GET `url` with `headers`; the body parsed as JSON (every answer of the services is).
pub async fn get(client: &reqwest::Client, url: &str, headers: &[(&str, &str)]) -> Answer {
    let mut request = client.get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = response.status().as_u16();
    let trace = traceresponse(&response);
    let body = response
        .json()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: the answer is not JSON: {e}"));
    Answer {
        status,
        trace,
        body,
    }
}
