// The LongLens trace viewer: reads the JSON blob in #data and builds one card per question.
// All text goes in through textContent (never innerHTML), so model output is shown, not interpreted.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("data").textContent);
  var app = document.getElementById("app");
  var PAGE = 20;
  var multi = data.runs.length > 1;
  var state = { status: "all", run: "all", page: 0, query: "" };
  var loaded = 0;

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function add(parent, child) { parent.appendChild(child); return child; }
  function pct(v) { return v === null || v === undefined ? "–" : (100 * v).toFixed(1) + "%"; }
  function num(v) { return v === null || v === undefined ? "–" : Math.round(v).toLocaleString("en-US"); }
  function secs(t, dur) {
    if ((dur === undefined ? t : dur) >= 120) {
      var whole = Math.round(t), m = Math.floor(whole / 60), s = whole - 60 * m;  // 239.6 s is 4:00, not 3:60
      if (m >= 60) return Math.floor(m / 60) + ":" + (m % 60 < 10 ? "0" : "") + (m % 60) + ":" + (s < 10 ? "0" : "") + s;
      return m + ":" + (s < 10 ? "0" : "") + s;
    }
    return String(Math.round(t * 10) / 10);
  }
  function letter(i) { return String.fromCharCode(65 + i); }

  // ------------------------------------------------------------ selection
  function visible(q) {
    if (state.run !== "all" && q.run !== state.run) return false;
    if (state.query) {
      var hay = (q.id + " " + (q.question || "")).toLowerCase();
      if (hay.indexOf(state.query) < 0) return false;
    }
    return true;
  }
  function matches(q, s) {  // a status filter; "guessed" cuts across the others
    return s === "all" || (s === "guessed" ? !!q.guessed : q.status === s);
  }
  function selected() {
    var list = data.questions.filter(function (q) { return visible(q) && matches(q, state.status); });
    if (multi && state.run === "all") {  // the same question of every run side by side
      var order = {};
      data.questions.forEach(function (q, i) { if (!(q.id in order)) order[q.id] = i; });
      list = list.map(function (q, i) { return [order[q.id], i, q]; })
        .sort(function (a, b) { return a[0] - b[0] || a[1] - b[1]; }).map(function (x) { return x[2]; });
    }
    return list;
  }

  // ------------------------------------------------------------ header
  function header() {
    var top = el("header", "top");
    add(top, el("h1", null, "LongLens traces"));
    var heads = add(top, el("div"));
    data.runs.forEach(function (r) {
      var h = add(heads, el("span", "headline"));
      add(h, el("b", null, r.name));
      h.appendChild(document.createTextNode(" " + r.bench + " · " + r.agent + " · "));
      add(h, el("span", "metric", (r.metric || "accuracy") + " " + pct(r.value) + " ± " + pct(r.se)));
      add(h, el("small", null, " (n=" + r.n + ")"));
    });
    add(top, el("div", "spacer"));
    var filters = add(top, el("div", "filters"));
    var base = data.questions.filter(visible);
    ["all", "correct", "wrong", "unparsed", "error", "guessed"].forEach(function (s) {
      var n = base.filter(function (q) { return matches(q, s); }).length;
      if (!n && (s === "error" || s === "guessed")) return;  // shown only when a run has them
      var b = add(filters, el("button", s === state.status ? "on" : null, s));
      b.dataset.filter = s;
      add(b, el("span", "count", n));
      b.addEventListener("click", function () { state.status = s; state.page = 0; render(); });
    });
    if (multi) {
      var runs = add(top, el("div", "filters"));
      ["all"].concat(data.runs.map(function (r) { return r.name; })).forEach(function (name) {
        var b = add(runs, el("button", name === state.run ? "on" : null, name === "all" ? "all runs" : name));
        b.dataset.run = name;
        b.addEventListener("click", function () { state.run = name; state.page = 0; render(); });
      });
    }
    var search = add(top, el("input"));
    search.type = "search";
    search.placeholder = "find id or words";
    search.value = state.query;
    search.addEventListener("change", function () { state.query = search.value.trim().toLowerCase(); state.page = 0; render(); });
    return top;
  }

  function pager(total) {
    var pages = Math.max(1, Math.ceil(total / PAGE));
    var p = el("div", "pager");
    if (pages === 1) return p;
    var prev = add(p, el("button", null, "‹"));
    prev.disabled = state.page === 0;
    prev.addEventListener("click", function () { state.page -= 1; render(); });
    add(p, el("span", null, " page " + (state.page + 1) + " of " + pages + " "));
    var next = add(p, el("button", null, "›"));
    next.disabled = state.page >= pages - 1;
    next.addEventListener("click", function () { state.page += 1; render(); });
    return p;
  }

  // ------------------------------------------------------------ timeline
  function place(node, s, e, dur) {
    var a = Math.max(0, Math.min(1, s / dur)), b = Math.max(a, Math.min(1, e / dur));
    node.style.left = (100 * a).toFixed(3) + "%";
    node.style.width = (100 * (b - a)).toFixed(3) + "%";
    return node;
  }
  function row(parent, label) {
    var r = add(parent, el("div", "tl-row"));
    add(r, el("span", "tl-label", label));
    return r;
  }
  function niceStep(dur) {
    var steps = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600];
    for (var i = 0; i < steps.length; i++) if (dur / steps[i] <= 8) return steps[i];
    return 7200;
  }
  function spanBox(cls, s, e, dur, text, title) {
    var box = place(el("div", "span " + cls, text), s, e, dur);
    box.title = title || text;
    box.dataset.start = s;
    box.dataset.end = e;
    return box;
  }
  function timeline(q) {
    var dur = q.duration_s || 0;
    (q.truth_spans || []).forEach(function (sp) { dur = Math.max(dur, sp[1]); });
    q.views.forEach(function (v) { dur = Math.max(dur, v.span[1]); });
    if (!dur) return null;
    var tl = el("div", "timeline");
    tl.dataset.duration = dur;
    var axis = add(tl, el("div", "tl-axis"));
    var step = niceStep(dur);
    for (var t = 0; t <= dur + 1e-9; t += step) add(axis, el("span", null, secs(t, dur))).style.left = (100 * t / dur) + "%";
    q.views.filter(function (v) { return v.kind === "fast"; }).forEach(function (v) {
      var r = row(tl, "fast view");
      r.title = v.times.length + " frames";
      v.times.forEach(function (t) { add(r, el("div", "tick")).style.left = (100 * t / dur) + "%"; });
    });
    var asks = [];
    q.steps.forEach(function (s) {
      var a = s.action || {};
      if (a.kind === "zoom" && a.start_s !== undefined) asks.push([a.start_s, a.end_s, s.index]);
    });
    if (asks.length) {
      var ra = row(tl, "asked");
      asks.forEach(function (x) {
        add(ra, spanBox("request", x[0], x[1], dur, "[" + secs(x[0], dur) + ", " + secs(x[1], dur) + "]",
          "step " + x[2] + " asked to zoom into [" + x[0] + ", " + x[1] + "] s"));
      });
    }
    var clips = q.views.filter(function (v) { return v.kind === "clip"; });
    if (clips.length) {
      var rc = row(tl, "zoomed");
      clips.forEach(function (v) {
        add(rc, spanBox("clip", v.span[0], v.span[1], dur, v.label.replace(/^clip /, ""),
          v.label + ": " + v.times.length + " frames, shown from step " + v.first_step));
      });
    }
    if ((q.truth_spans || []).length) {
      var rt = row(tl, "truth");
      q.truth_spans.forEach(function (sp) {
        add(rt, spanBox("truth", sp[0], sp[1], dur, "[" + secs(sp[0], dur) + ", " + secs(sp[1], dur) + "]", "truth span"));
      });
    }
    if (q.span) {
      add(row(tl, "answered"), spanBox("pred", q.span[0], q.span[1], dur, "[" + secs(q.span[0], dur) + ", " +
        secs(q.span[1], dur) + "]", "the answered span"));
    }
    return tl;
  }

  // ------------------------------------------------------------ frames
  function onLoad(img) {
    img.addEventListener("load", function () {
      if (img.naturalWidth > 0) {
        img.dataset.loaded = "1";
        loaded += 1;
        app.dataset.imagesLoaded = loaded;
      }
    });
    img.addEventListener("error", function () { img.dataset.failed = "1"; });
  }
  function frames(q) {
    var box = el("div", "frames");
    q.views.forEach(function (v) {
      var what = v.kind === "fast" ? "fast view" : v.label;
      var size = v.width && v.height ? ", " + v.width + "×" + v.height : "";
      var label = what + " · " + v.times.length + " frames" + size + " · " + num(v.visual_tokens) + " visual tokens";
      if (v.kind === "clip") label += " · from step " + v.first_step;
      if (v.thumbs && v.thumbs.length && v.thumbs.length < v.times.length) label += " · " + v.thumbs.length + " shown";
      add(box, el("div", "view-label", label));
      if (!v.thumbs || !v.thumbs.length) return;
      var strip = add(box, el("div", "strip"));
      v.thumbs.forEach(function (th) {
        var fig = add(strip, el("figure"));
        var img = el("img");
        img.alt = what + " at " + th.t + " s";
        img.title = th.t + " s";
        onLoad(img);
        img.src = th.src;
        add(fig, img);
        add(fig, el("figcaption", null, (q.duration_s || 0) >= 120 ? secs(th.t, q.duration_s) : secs(th.t) + " s"));
      });
    });
    return box;
  }

  // ------------------------------------------------------------ reasoning
  function stepTitle(s) {
    var a = s.action || {};
    if (a.kind === "zoom") return "zoom [" + a.start_s + ", " + a.end_s + "]";
    if (a.kind === "answer") return "answer " + (a.choice || a.answer || a.text || "");
    if (s.tool) return s.tool.name + (s.tool.node !== undefined ? " " + s.tool.node : "");
    return a.kind || "step";
  }
  function steps(q) {
    var list = el("ol", "steps");
    q.steps.forEach(function (s) {
      var kind = (s.action && s.action.kind) || "";
      var li = add(list, el("li", kind));
      var head = add(li, el("div", "step-head", "Step " + s.index + " · " + stepTitle(s)));
      var sub = [];
      if (s.clip_added) sub.push("→ clip [" + s.clip_added[0] + ", " + s.clip_added[1] + "]");
      if (s.visual_tokens) sub.push(num(s.visual_tokens) + " visual tokens");
      if (s.completion_tokens) sub.push(num(s.completion_tokens) + " completion tokens");
      if (s.latency_s) sub.push(s.latency_s.toFixed(2) + " s");
      add(head, el("span", "sub", sub.join(" · ")));
      if (s.note) add(li, el("div", "step-note", s.note));
      if (s.error) add(li, el("div", "step-error", "error: " + s.error));
      add(li, el("pre", "completion", s.completion || ""));
      if (s.tool) {
        var t = add(li, el("div", "tool-call"));
        add(t, el("span", "name", s.tool.name));
        var bits = [];
        if (s.tool.node !== undefined) bits.push("node " + s.tool.node);
        if (s.tool.query) bits.push("query: " + s.tool.query);
        if (s.tool.cache) bits.push("cache " + s.tool.cache);
        if (s.tool.latency_s) bits.push(s.tool.latency_s.toFixed(2) + " s");
        t.appendChild(document.createTextNode(" " + bits.join(" · ")));
        if (s.tool.result !== undefined) add(li, el("pre", "tool-result", s.tool.result));
      }
    });
    return list;
  }

  function options(q) {
    var list = el("ul", "options");
    (q.options || []).forEach(function (o, i) {
      var L = letter(i);
      var li = add(list, el("li"));
      if (L === q.truth) li.classList.add("truth");
      if (L === q.parsed) li.classList.add("pred");
      if (L === q.parsed && L !== q.truth) li.classList.add("miss");
      add(li, el("span", "letter", L));
      li.appendChild(document.createTextNode(o));
      var marks = [];
      if (L === q.truth) marks.push("truth");
      if (L === q.parsed) marks.push("answered");
      if (marks.length) add(li, el("span", "mark", marks.join(", ")));
    });
    return list;
  }

  function optionText(q, L) {
    var i = L ? L.charCodeAt(0) - 65 : -1;
    return q.options && i >= 0 && i < q.options.length ? L + " (" + q.options[i] + ")" : (L || "–");
  }

  function card(q) {
    var c = el("article", "card question-card");
    c.dataset.status = q.status;
    c.dataset.id = q.id;
    c.dataset.run = q.run;
    var head = add(c, el("div", "q-head"));
    add(head, el("span", "badge " + q.status, q.status));
    if (q.guessed) add(head, el("span", "badge guess", "guess"));
    add(head, el("span", "id", q.id));
    if (multi) add(head, el("span", "chip run", q.run));
    Object.keys(q.categories || {}).forEach(function (k) {
      var v = q.categories[k];
      add(head, el("span", "chip", k + ": " + (Array.isArray(v) ? v.join(", ") : v)));
    });
    var cost = q.cost || {};
    var meta = [];
    if (cost.steps !== undefined) meta.push(num(cost.steps) + (cost.steps === 1 ? " step" : " steps"));
    if (cost.visual_tokens !== undefined) meta.push(num(cost.visual_tokens) + " visual tokens");
    if (cost.frames_decoded !== undefined) meta.push(num(cost.frames_decoded) + " frames decoded");
    if (cost.wall_s !== undefined) meta.push(cost.wall_s.toFixed(1) + " s");
    if (q.retries) meta.push(q.retries + (q.retries === 1 ? " retried call" : " retried calls"));
    add(head, el("span", "meta", meta.join(" · ")));
    (q.notes || []).forEach(function (n) { add(c, el("div", "note", n)); });
    if (q.error) add(c, el("div", "note", (q.error_kind ? "failed (" + q.error_kind + "): " : "error: ") + q.error));
    if (q.question) add(c, el("div", "question", q.question));
    if (q.options && q.options.length) add(c, options(q));
    var tl = timeline(q);
    if (tl) add(c, tl);
    if (q.views.length) add(c, frames(q));
    if (q.steps.length) add(c, steps(q));
    var fin = add(c, el("div", "final"));
    add(fin, el("b", null, "Answer: "));
    fin.appendChild(document.createTextNode(q.parsed ? optionText(q, q.parsed) : "unparsed"
      + (q.prediction ? " (" + q.prediction + ")" : "")));
    fin.appendChild(document.createTextNode(" — truth: " + optionText(q, q.truth) + " "));
    add(fin, el("span", q.status === "correct" ? "ok" : "no", q.status === "correct" ? "✓" : "✗"));
    return c;
  }

  function render() {
    while (app.firstChild) app.removeChild(app.firstChild);
    loaded = 0;
    app.dataset.imagesLoaded = 0;
    add(app, header());
    var list = selected();
    var main = add(app, el("main"));
    var pages = Math.max(1, Math.ceil(list.length / PAGE));
    state.page = Math.min(state.page, pages - 1);
    var shown = list.slice(state.page * PAGE, (state.page + 1) * PAGE);
    if (!shown.length) add(main, el("div", "card empty", "No question matches."));
    shown.forEach(function (q) { add(main, card(q)); });
    add(main, pager(list.length));
    app.dataset.cards = shown.length;
    app.dataset.images = main.getElementsByTagName("img").length;
    app.dataset.ready = "1";
  }

  render();
})();
