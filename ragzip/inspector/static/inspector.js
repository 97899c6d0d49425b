// ragzip inspector: draws the view model of ragzip.inspector.view (kept text highlighted,
// dropped text struck through) in the sidecar's /ui page and in `ragzip compress --html`
// reports. Text is only ever inserted as text nodes, never as HTML.
"use strict";
(function () {
  const MODE = document.body.dataset.mode || "report";

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function num(value, digits) {
    return value === null || value === undefined ? "n/a" : Number(value).toFixed(digits);
  }

  function seconds(value) {
    if (value === null || value === undefined) return "n/a";
    return value < 1 ? `${(value * 1000).toFixed(1)} ms` : `${value.toFixed(2)} s`;
  }

  function renderDocument(doc) {
    const text = el("div", { class: "text" });
    for (const [piece, kept] of doc.segments) {
      text.append(kept ? el("mark", { class: "kept" }, piece) : el("span", { class: "dropped" }, piece));
    }
    const generated = doc.generated.length
      ? el("div", { class: "generated" }, ...doc.generated.map((g) => el("p", { class: "gen" }, g)))
      : null;
    const title = doc.title ? `${doc.id} · ${doc.title}` : doc.id;
    const budget = doc.budget === null || doc.budget === undefined ? "" : ` · budget ${Math.round(doc.budget)}`;
    const stats = `relevance ${num(doc.relevance, 3)}${budget} · kept ${doc.tokens_after} of ${doc.tokens_before} tokens`;
    return el(
      "article",
      { class: doc.kept ? "doc" : "doc doc-dropped", "data-id": doc.id },
      el("div", { class: "doc-head" }, el("span", { class: "doc-id" }, title), el("span", {}, stats)),
      text,
      generated,
    );
  }

  function answerBox(heading, answer, took) {
    return el(
      "div",
      { class: "answer" },
      el("h4", {}, took === null || took === undefined ? heading : `${heading} (${seconds(took)})`),
      el("p", {}, answer === null || answer === undefined ? "(no answer)" : answer),
    );
  }

  function renderRun(run, view) {
    const ratio = run.ratio === null ? "all dropped" : `${num(run.ratio, 1)}x`;
    const timings = el("p", { class: "timings" });
    for (const [stage, took] of Object.entries(run.timings)) {
      timings.append(el("span", {}, `${stage} ${seconds(took)}`));
    }
    const badge =
      run.hit === undefined ? null : el("span", { class: run.hit ? "badge hit" : "badge miss" }, run.hit ? "hit" : "miss");
    const card = el(
      "section",
      { class: "run", "data-run": run.name },
      el("h3", {}, run.name, " ", badge),
      el(
        "p",
        { class: "figures" },
        el("span", {}, "tokens ", el("b", {}, `${run.tokens_before} → ${run.tokens_after}`)),
        el("span", {}, "ratio ", el("b", {}, ratio)),
        el("span", {}, "counted with ", el("b", {}, run.tokenizer)),
      ),
      timings,
    );
    if (run.answer !== null && run.answer !== undefined) {
      card.append(
        el(
          "div",
          { class: "answers" },
          answerBox("full context", view.full_answer, view.full_answer_seconds),
          answerBox(`${run.name} context`, run.answer, run.answer_seconds),
        ),
      );
    }
    for (const doc of run.documents) card.append(renderDocument(doc));
    return card;
  }

  function renderView(view) {
    const budget = Object.entries(view.budget || {})
      .filter(([, v]) => v !== null && !(Array.isArray(v) && v.length === 0))
      .map(([k, v]) => `${k} ${Array.isArray(v) ? v.join(", ") : v}`)
      .join(" · ");
    return el(
      "section",
      { class: "view" },
      view.title ? el("h2", {}, view.title) : null,
      el("p", { class: "query" }, el("b", {}, "Q "), view.query || "(no question)"),
      budget ? el("p", { class: "figures" }, `budget: ${budget} · ${view.documents} documents`) : null,
      el("div", { class: "runs" }, ...view.runs.map((run) => renderRun(run, view))),
    );
  }

  function show(views) {
    const into = document.getElementById("views");
    into.replaceChildren(...views.map(renderView));
  }

  // -- report mode: the views are embedded in the file ---------------------------------------
  if (MODE === "report") {
    const data = JSON.parse(document.getElementById("ragzip-data").textContent);
    show(data.views);
    return;
  }

  // -- app mode: the sidecar's /ui page --------------------------------------------------------
  const message = document.getElementById("message");
  const status = document.getElementById("status");
  const form = document.getElementById("ask");
  const keyField = document.getElementById("key-field");
  const keyInput = document.getElementById("api-key");
  let config = { max_body_bytes: 8 * 1024 * 1024, max_documents: 1000, max_compressors: 4 };

  class InputError extends Error {}

  function say(text) {
    message.textContent = text;
    message.hidden = !text;
  }

  async function call(method, path, body) {
    const headers = { Accept: "application/json" };
    const key = keyInput.value || sessionStorage.getItem("ragzip-key");
    if (key) headers.Authorization = `Bearer ${key}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(path, { method, headers, body, credentials: "same-origin" });
    let data = null;
    try {
      data = await response.json();
    } catch (err) {
      data = null;
    }
    if (response.status === 401) {
      keyField.hidden = false;
      throw new InputError("This server needs its API key: enter it in the API key field and try again.");
    }
    if (!response.ok) {
      const detail = data && data.error ? data.error.message : `HTTP ${response.status}`;
      throw new InputError(`The server refused the request: ${detail}`);
    }
    if (key) sessionStorage.setItem("ragzip-key", key);
    return data;
  }

  function parseDocuments(raw) {
    const text = raw.trim();
    if (!text) return [];
    if (text[0] !== "[" && text[0] !== "{") {
      return text.split(/\n\s*\n/).map((s) => s.trim()).filter(Boolean);
    }
    let data;
    try {
      data = JSON.parse(text);
    } catch (err) {
      throw new InputError(
        `The documents are not valid JSON (${err.message}). Give a JSON list of strings or of ` +
          '{"id": ..., "text": ...} objects, or plain text with a blank line between documents.',
      );
    }
    if (!Array.isArray(data)) throw new InputError("The JSON documents must be a list: [\"first\", \"second\"].");
    return data.map((item, i) => {
      if (typeof item === "string") return item;
      if (item && typeof item === "object" && typeof item.text === "string") {
        const doc = { text: item.text };
        if (item.id !== undefined && item.id !== null) doc.id = String(item.id);
        return doc;
      }
      throw new InputError(`Document ${i + 1} is neither a string nor an object with a "text" string.`);
    });
  }

  function request() {
    const query = document.getElementById("query").value.trim();
    if (!query) throw new InputError("Enter a question: compressors keep what serves it.");
    const documents = parseDocuments(document.getElementById("documents").value);
    if (!documents.length && !config.has_index) {
      throw new InputError("Paste at least one document (this server has no index to retrieve from).");
    }
    if (documents.length > config.max_documents) {
      throw new InputError(
        `${documents.length} documents: this server takes at most ${config.max_documents} in one request.`,
      );
    }
    const names = [...document.querySelectorAll("#compressors input:checked")].map((box) => box.value);
    if (!names.length) throw new InputError("Pick at least one compressor.");
    if (names.length > config.max_compressors) {
      throw new InputError(`Pick at most ${config.max_compressors} compressors at once.`);
    }
    const budget = {};
    const ratio = Number(document.getElementById("ratio").value);
    const tokens = document.getElementById("tokens").value;
    if (tokens !== "") budget.tokens = Math.max(0, Math.floor(Number(tokens)));
    if (ratio) {
      if (!(ratio >= 1)) throw new InputError("The ratio is original / compressed: 1 or more.");
      budget.ratio = ratio;
    }
    if (budget.ratio === undefined && budget.tokens === undefined) throw new InputError("Give a ratio or a token count.");
    const body = JSON.stringify({
      query,
      documents: documents.length ? documents : null,
      compressors: names,
      budget,
      answer: document.getElementById("answer").checked,
    });
    const size = new Blob([body]).size;
    if (size > config.max_body_bytes) {
      const mb = (n) => (n / 1048576).toFixed(1);
      throw new InputError(
        `This request is ${mb(size)} MB; the server accepts at most ${mb(config.max_body_bytes)} MB ` +
          "(max_body_bytes). Send fewer or shorter documents.",
      );
    }
    return body;
  }

  async function run(event) {
    event.preventDefault();
    say("");
    const button = document.getElementById("run");
    try {
      const body = request();
      button.disabled = true;
      status.textContent = "Compressing…";
      const view = await call("POST", "/v1/inspect", body);
      show([view]);
      status.textContent = "";
    } catch (err) {
      status.textContent = "";
      say(err instanceof InputError ? err.message : `Something went wrong: ${err.message}`);
    } finally {
      button.disabled = false;
    }
  }

  async function retrieve() {
    say("");
    try {
      const query = document.getElementById("query").value.trim();
      if (!query) throw new InputError("Enter a question to retrieve documents for.");
      const found = await call("POST", "/v1/retrieve", JSON.stringify({ query }));
      const docs = found.documents.map((d) => ({ id: d.id, text: d.text }));
      document.getElementById("documents").value = JSON.stringify(docs, null, 1);
    } catch (err) {
      say(err instanceof InputError ? err.message : `Something went wrong: ${err.message}`);
    }
  }

  async function start() {
    try {
      config = await call("GET", "/ui/config.json");
    } catch (err) {
      say(err.message);
      return;
    }
    say("");
    const choices = document.getElementById("compressors");
    choices.replaceChildren(
      ...config.compressors.map((name) =>
        el(
          "label",
          {},
          el("input", { type: "checkbox", name: "compressor", value: name, checked: name === config.default }),
          ` ${name}`,
        ),
      ),
    );
    document.getElementById("retrieve").hidden = !config.has_index;
    document.getElementById("answer-field").hidden = !config.has_generator;
    document.body.dataset.ready = "true";
  }

  keyInput.addEventListener("change", () => {
    if (!document.body.dataset.ready) start();
  });
  form.addEventListener("submit", run);
  document.getElementById("retrieve").addEventListener("click", retrieve);
  start();
})();
