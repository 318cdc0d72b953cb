(function () {
  "use strict";
  // The report's grid, built here from the data Python wrote (pipeline/report/page.py):
  // axes chosen in the page, filters starting on "all", pages of at most page_tiles tiles,
  // picks kept in localStorage per job and exported as picks.jsonl, compare, keyboard.
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var S = data.settings, cells = data.cells, facets = S.facets;
  // The cell-state table (pipeline/job/records.py), given in the settings: what each state
  // means, what a run does next, whether it is a problem. No state word is written here.
  var STATES = S.states;
  function stateInfo(name) { return STATES[name] || { means: "", next: "", advice: "", problem: false }; }
  var byId = {}, facetIx = {};
  cells.forEach(function (c, i) { c.i = i; byId[c.id] = c; });
  facets.forEach(function (f, i) { facetIx[f.name] = i; });
  var $ = function (sel, root) { return (root || document).querySelector(sel); };
  var all = function (sel, root) { return Array.prototype.slice.call((root || document).querySelectorAll(sel)); };
  var view = { rows: S.rows, cols: S.cols, filters: {}, states: "*", page: 0,
               size: "fit", details: null, hideFlagged: false, sort: "" };
  var pages = [], colValues = [], matching = 0;
  var compare = [];
  var lazy = "IntersectionObserver" in window ? new IntersectionObserver(function (entries) {
    entries.forEach(function (e) { if (e.isIntersecting) { load(e.target); lazy.unobserve(e.target); } });
  }, { rootMargin: "800px" }) : null;

  // --- picks: cell ids in localStorage, per job --------------------------------------------
  var picks = new Set();
  var remote = null;  // served by `pipeline review`: saves a star there (the block at the end)
  if (!S.served) {
    try { (JSON.parse(localStorage.getItem(S.picks_key) || "[]") || []).forEach(function (id) { picks.add(id); }); } catch (e) { /* storage off: picks last this visit */ }
  }
  function savePicks() {
    if (!S.served) {
      try { localStorage.setItem(S.picks_key, JSON.stringify(Array.from(picks))); } catch (e) { /* as above */ }
    }
    showPicks();
  }
  function picked() { return cells.filter(function (c) { return picks.has(c.id); }); }
  function showPicks() {
    var n = picked().length;
    $(".picks .picked").textContent = n ? "★ " + n + " pick" + (n === 1 ? "" : "s") : "☆ no picks";
    all("[data-picks]").forEach(function (b) { b.disabled = n === 0; });
  }
  function toggleStar(id) {
    if (picks.has(id)) { picks.delete(id); } else { picks.add(id); }
    savePicks();
    if (remote) { remote(id, picks.has(id)); }
    var tile = document.getElementById("cell-" + id);
    if (tile) { markStar(tile, picks.has(id)); }
    if (view.states === "picked") { render(); }
  }
  function markStar(tile, on) {
    var b = $(".star", tile);
    b.textContent = on ? "★" : "☆";
    b.setAttribute("aria-pressed", on ? "true" : "false");
    tile.classList.toggle("picked", on);
  }
  function download() {
    var text = picked().map(function (c) { return JSON.stringify(c.pick); }).join("\n") + "\n";
    var a = document.createElement("a");
    a.href = URL.createObjectURL(new Blob([text], { type: "application/x-ndjson" }));
    a.download = "picks.jsonl";
    document.body.appendChild(a);
    a.click();
    setTimeout(function () { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
  }
  var PLAIN = /^[A-Za-z_][A-Za-z0-9_.\/-]*$/, RESERVED = /^(y|n|yes|no|on|off|true|false|null|~)$/i;
  function yaml(v) {
    if (v === null || v === undefined) { return "null"; }
    if (Array.isArray(v)) { return "[" + v.map(yaml).join(", ") + "]"; }
    if (typeof v === "object") {
      return "{" + Object.keys(v).map(function (k) {
        return (PLAIN.test(k) && !RESERVED.test(k) ? k : JSON.stringify(k)) + ": " + yaml(v[k]);
      }).join(", ") + "}";
    }
    return typeof v === "string" ? JSON.stringify(v) : String(v);
  }
  function asYaml() {
    var lines = ["# " + picked().length + " picks from job " + S.job + " (" + S.out + "); paste under `matrix:`", "rows:"];
    picked().forEach(function (c) {
      var p = c.pick;
      lines.push("  - " + yaml({ cell: p.cell, job: p.job, out: p.out, values: p.values }) +
                 "  # " + String(p.label).replace(/[\r\n]+/g, " "));
    });
    return lines.join("\n") + "\n";
  }
  function showYaml() {
    var box = $(".yaml-view"), area = $("textarea", box), note = $(".copied", box);
    area.value = asYaml();
    box.hidden = false;
    area.focus();
    area.select();
    note.textContent = "Select and copy (Ctrl+C).";
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(area.value).then(function () { note.textContent = "Copied to the clipboard."; }, function () {});
    }
  }

  // --- the grid ----------------------------------------------------------------------------
  function matches(c) {
    if (view.hideFlagged && flagsOf(c).length) { return false; }
    for (var name in view.filters) {
      if (c.k[facetIx[name]] !== view.filters[name]) { return false; }
    }
    if (view.states === "problem") { return stateInfo(c.state).problem; }
    if (view.states === "picked") { return picks.has(c.id); }
    if (STATES[view.states]) { return c.state === view.states; }  // one state only
    return true;
  }
  function paginate() {
    var ri = view.rows ? facetIx[view.rows] : -1, ci = view.cols ? facetIx[view.cols] : -1;
    var list = cells.filter(matches);
    matching = list.length;
    // with an order chosen (score, motion), each slot's tiles follow it and the rows go by
    // their best tile; columns keep their order
    var key = sortKey(), best = {};
    if (key && ri >= 0) {
      list.forEach(function (c) { var v = c.k[ri], x = key(c); if (!(v in best) || x < best[v]) { best[v] = x; } });
    }
    list.sort(function (a, b) {
      return (ri < 0 ? 0 : (key ? best[a.k[ri]] - best[b.k[ri]] : 0) || a.k[ri] - b.k[ri]) ||
        (ci < 0 ? 0 : a.k[ci] - b.k[ci]) || (key ? key(a) - key(b) : 0) || a.i - b.i;
    });
    var cols = {};
    list.forEach(function (c) { cols[ci < 0 ? 0 : c.k[ci]] = true; });
    colValues = Object.keys(cols).map(Number).sort(function (a, b) { return a - b; });
    var rows = [], row = null;
    list.forEach(function (c) {
      var v = ri < 0 ? 0 : c.k[ri];
      if (!row || row.value !== v) { row = { value: v, cells: [] }; rows.push(row); }
      row.cells.push(c);
    });
    var limit = S.page_tiles, page = [], n = 0;
    pages = [];
    rows.forEach(function (r) {
      if (n && n + r.cells.length > limit) { pages.push(page); page = []; n = 0; }
      for (var at = 0; at < r.cells.length; at += limit) {  // a row longer than a page is cut
        var piece = r.cells.slice(at, at + limit);
        if (at) { pages.push(page); page = []; n = 0; }
        page.push({ value: r.value, cells: piece });
        n += piece.length;
      }
    });
    if (page.length) { pages.push(page); }
    view.page = Math.max(0, Math.min(view.page, pages.length - 1));
  }
  function facetText(axis, v) {
    if (!axis) { return ""; }
    var f = facets[facetIx[axis]];
    return f.values[v] !== undefined ? f.values[v] : "(none)";
  }
  function render() {
    stop();
    paginate();
    var grid = $(".grid"), current = pages[view.page] || [];
    grid.textContent = "";
    var videos = 0;
    current.forEach(function (piece) { piece.cells.forEach(function (c) { if (c.video) { videos += 1; } }); });
    var eager = videos <= S.eager_videos;
    var matrix = Boolean(view.rows && view.cols);
    grid.className = "grid " + (matrix ? "matrix" : "flow");
    grid.style.setProperty("--ncols", String(colValues.length || 1));
    if (matrix) { renderMatrix(grid, current, eager); } else { renderFlow(grid, current, eager); }
    fit();
    var shown = current.reduce(function (n, p) { return n + p.cells.length; }, 0);
    var text = shown + " of " + cells.length + " cells shown";
    if (pages.length > 1) {
      text += " · page " + (view.page + 1) + " of " + pages.length;
      if (matching < cells.length) { text += " · " + matching + " match"; }
    }
    $(".controls .count").textContent = text;
    $(".pager").hidden = pages.length <= 1;
    $(".pager .pageno").textContent = (view.page + 1) + " / " + pages.length;
    $('[data-page="-1"]').disabled = view.page <= 0;
    $('[data-page="1"]').disabled = view.page >= pages.length - 1;
  }
  function colOf(c) { return view.cols ? c.k[facetIx[view.cols]] : 0; }
  // Two axes: a table, a row heading on the left, a column per value, each slot's tiles side
  // by side and wrapping inside its column.
  function renderMatrix(grid, current, eager) {
    var corner = div("corner");
    corner.appendChild(span("axis", "rows")); corner.appendChild(document.createTextNode(" " + view.rows));
    corner.appendChild(document.createElement("br"));
    corner.appendChild(span("axis", "columns")); corner.appendChild(document.createTextNode(" " + view.cols));
    grid.appendChild(corner);
    colValues.forEach(function (v, j) {
      var head = div("colhead"), label = document.createElement("span");
      head.dataset.col = String(j);
      label.appendChild(span("axis", view.cols)); label.appendChild(document.createTextNode(" "));
      var b = document.createElement("b");
      b.textContent = facetText(view.cols, v);
      b.title = b.textContent;
      label.appendChild(b);
      head.appendChild(label);
      head.appendChild(playButton("col", j, "▶ column", "play this column in sync"));
      grid.appendChild(head);
    });
    current.forEach(function (piece, i) {
      grid.appendChild(rowHead(piece, i));
      colValues.forEach(function (v, j) {
        var slot = div("slot");
        slot.dataset.row = String(i);
        slot.dataset.col = String(j);
        piece.cells.forEach(function (c) { if (colOf(c) === v) { slot.appendChild(tile(c, eager)); } });
        if (!slot.children.length) { var none = div("none"); none.textContent = "no cell here"; slot.appendChild(none); }
        grid.appendChild(slot);
      });
    });
  }
  // One axis (or none): a group per value, a heading above its tiles, which sit side by side
  // and wrap; the groups flow across the page and down it, so short rows share a line.
  function renderFlow(grid, current, eager) {
    current.forEach(function (piece, i) {
      colValues.forEach(function (v, j) {
        var inSlot = piece.cells.filter(function (c) { return colOf(c) === v; });
        if (!inSlot.length) { return; }
        var group = div("group");
        if (view.rows) { group.appendChild(rowHead(piece, i)); }
        else if (view.cols) {
          var head = div("colhead"), b = document.createElement("b");
          head.dataset.col = String(j);
          head.appendChild(span("axis", view.cols));
          b.textContent = facetText(view.cols, v); b.title = b.textContent;
          head.appendChild(b);
          head.appendChild(playButton("col", j, "▶", "play this column in sync"));
          group.appendChild(head);
        }
        var slot = div("slot");
        slot.dataset.row = String(i);
        slot.dataset.col = String(j);
        inSlot.forEach(function (c) { slot.appendChild(tile(c, eager)); });
        group.appendChild(slot);
        grid.appendChild(group);
      });
    });
  }
  function rowHead(piece, i) {
    var head = div("rowhead");
    head.dataset.row = String(i);
    if (view.rows) {
      head.appendChild(span("axis", view.rows));
      var b = document.createElement("b");
      b.textContent = facetText(view.rows, piece.value);
      b.title = rowTitle(piece.cells[0]);
      head.appendChild(b);
    }
    head.appendChild(playButton("row", i, view.cols ? "▶ row" : "▶", "play this row in sync"));
    return head;
  }

  // --- fitting the window: tile size and details chosen so the page takes few screens -------
  var MIN_TILE = 200, MAX_TILE = 480, GAP = 10, GROUP_GAP = 20, HEAD = 150, FULL_SCREENS = 2;
  // The tile widths this layout can take, largest first: {tile, across} (tiles per line).
  function sizes(grid) {
    var width = grid.clientWidth || 1200, out = [], t, a;
    if (grid.classList.contains("matrix")) {
      var ncols = colValues.length || 1, most = 1;
      all(".slot", grid).forEach(function (slot) { most = Math.max(most, tileCount(slot)); });
      var colw = Math.floor((width - HEAD - 12 * ncols) / ncols);
      for (a = 1; a <= most; a++) {
        t = Math.floor((colw - (a - 1) * GAP) / a);
        // one tile a slot is the floor: narrower than MIN_TILE with many columns, never wider
        // than the window
        if (t >= MIN_TILE || a === 1) { out.push({ tile: Math.max(40, Math.min(MAX_TILE, t)), across: a }); }
      }
    } else {
      var most2 = Math.max(1, Math.floor((width + GROUP_GAP) / (MIN_TILE + GROUP_GAP)));
      for (a = 1; a <= most2; a++) {
        t = Math.floor((width - (a - 1) * GROUP_GAP) / a);
        out.push({ tile: Math.min(MAX_TILE, t), across: a });
      }
    }
    // the same width twice (capped): keep the one with more tiles across
    return out.filter(function (c, i) { return !out[i + 1] || out[i + 1].tile !== c.tile; });
  }
  function tileCount(slot) { return slot.querySelectorAll(".tile").length; }
  function applySize(grid, size, details) {
    grid.classList.toggle("compact", !details);
    grid.style.setProperty("--tile", size.tile + "px");
    grid.style.setProperty("--head", HEAD + "px");
    grid.style.setProperty("--colw", (size.across * size.tile + (size.across - 1) * GAP) + "px");
    all(".slot", grid).forEach(function (slot) {
      var k = Math.max(1, tileCount(slot)), across = Math.min(k, size.across);
      if (grid.classList.contains("flow")) { across = Math.ceil(k / Math.ceil(k / across)); }  // even lines
      slot.style.setProperty("--across", String(across));
    });
  }
  function fit() {
    var grid = $(".grid");
    if (!grid.querySelector(".tile")) { return; }
    var options = sizes(grid), screen = window.innerHeight || 900;
    if (view.size !== "fit") {
      var at = { large: 0, medium: Math.floor((options.length - 1) / 2), small: options.length - 1 }[view.size];
      options = [options[at]];
    }
    // Screens a size takes, measured with the videos out of the layout (their boxes keep
    // their size; laying out 200 players is what makes a measure slow). Smaller tiles take
    // no more screens, so a binary search finds the largest size of the fewest screens.
    grid.classList.add("measuring");
    function screens(size, details) {
      applySize(grid, size, details);
      return Math.ceil(document.documentElement.scrollHeight / screen);
    }
    function fewest(details) {
      var last = options.length - 1, n = screens(options[last], details), lo = 0, hi = last;
      while (lo < hi) {
        var mid = (lo + hi) >> 1;
        if (screens(options[mid], details) <= n) { hi = mid; } else { lo = mid + 1; }
      }
      return { size: options[lo], n: n, details: details };
    }
    var choice = view.details === false ? null : fewest(true);
    if (view.details === null && choice && choice.n > FULL_SCREENS) { choice = null; }
    if (!choice) { choice = fewest(false); }
    applySize(grid, choice.size, choice.details);
    grid.classList.remove("measuring");
    $("[data-details]").checked = choice.details;
  }
  var refit = null;
  window.addEventListener("resize", function () { clearTimeout(refit); refit = setTimeout(fit, 150); });
  function rowTitle(c) {
    if (!c || !view.rows) { return ""; }
    var keys = facets[facetIx[view.rows]].keys;
    return keys.map(function (k) { return k + "=" + (c.pick.values[k] === undefined ? "—" : c.pick.values[k]); }).join("\n");
  }
  function div(cls) { var d = document.createElement("div"); d.className = cls; return d; }
  function span(cls, text) { var s = document.createElement("span"); s.className = cls; s.textContent = text; return s; }
  function playButton(kind, index, text, title) {
    var b = document.createElement("button");
    b.type = "button"; b.dataset.play = kind; b.dataset.index = String(index);
    b.textContent = text; b.title = title;
    return b;
  }
  var TEMPLATE = document.getElementById("tile");
  function secs(s) { return s < 60 ? s.toFixed(1) + " s" : Math.floor(s / 60) + "m" + ("0" + Math.round(s % 60)).slice(-2) + "s"; }
  function tile(c, eager) {
    var t = TEMPLATE.content.firstElementChild.cloneNode(true);
    t.id = "cell-" + c.id;
    t.dataset.id = c.id;
    t.dataset.state = c.state;
    t.classList.add("s-" + c.state);
    var media = $(".media", t);
    if (c.video) {
      var v = document.createElement("video");
      v.muted = true; v.loop = true; v.controls = true;
      v.setAttribute("playsinline", "");
      v.preload = eager ? "auto" : "metadata";
      if (c.poster) { v.poster = c.poster; }
      v.dataset.src = c.video;
      media.appendChild(v);
      if (eager || !lazy) { load(v); } else { lazy.observe(v); }
    } else if (c.image) {
      var img = document.createElement("img");
      img.src = c.image; img.alt = c.pick.label; img.loading = "lazy";
      media.appendChild(img);
    } else {
      var ph = div("placeholder");
      ph.appendChild(span("big", c.state));
      var why = document.createElement("span"), info = stateInfo(c.state);
      if (c.missing) { why.textContent = "video file missing: " + c.missing; }
      else { why.textContent = (c.held ? "held since " + c.held + ": " : "") + (c.reason || info.means); }
      ph.title = [info.means, info.next ? "the next run: " + info.next : "", info.advice]
        .filter(Boolean).join(" · ");
      ph.appendChild(why);
      media.appendChild(ph);
    }
    if (c.strip) {
      var strip = $(".strip", t);
      strip.loading = eager ? "eager" : "lazy";
      strip.src = c.strip; strip.hidden = false;
    }
    markStar(t, picks.has(c.id));
    var label = $(".label", t);
    label.textContent = shortLabel(c);
    label.title = (c.pick.label || c.id) + (c.pick.prompt ? "\n" + c.pick.prompt : "");
    var flags = flagsOf(c);
    if (flags.length) {
      var fl = $(".flags", t);
      fl.hidden = false;
      fl.textContent = "⚠ " + flags.join(", ");
      fl.title = "flagged by the media checks: " + flags.join(", ") + (qaMotion(c) === null ? "" : " · motion " + qaMotion(c));
      t.classList.add("flagged");
    }
    if (score(c) !== null) {
      var sc = $(".score", t), r = c.rating;
      sc.hidden = false;
      sc.textContent = (r.rank ? "#" + r.rank + " " : "") + score(c).toFixed(2);
      sc.title = "rating score " + score(c) + (r.votes !== undefined ? " · " + r.votes + " votes: " + (r.wins || 0) +
        " won, " + (r.losses || 0) + " lost, " + (r.ties || 0) + " tied" : "");
    }
    var badge = $(".badge", t);
    badge.textContent = c.state;
    badge.title = stateInfo(c.state).means;
    badge.classList.add("s-" + c.state);
    var facts = $(".facts", t);
    if (c.seed !== undefined) { facts.appendChild(span("", "seed " + c.seed)); }
    if (c.queue !== undefined) { facts.appendChild(span("", "queue " + secs(c.queue))).title = "queue time"; }
    if (c.gen !== undefined) { facts.appendChild(span("", "gen " + secs(c.gen))).title = "generation time"; }
    if (c.cost) { facts.appendChild(span("", c.cost)).title = c.cost[0] === "~" ? "estimated cost" : "cost reported by the API"; }
    if (c.tries > 1) { facts.appendChild(span("", c.tries + " attempts")); }
    if (qaMotion(c) !== null) { facts.appendChild(span("", "motion " + qaMotion(c))).title = "motion score (media checks)"; }
    if (c.check) {
      var check = $(".check", t);
      check.hidden = false;
      check.classList.add(c.check.ok ? "ok" : "bad");
      check.textContent = (c.check.ok ? "✓ " : "⚠ ") + c.check.text;
      check.title = "media check";
    }
    if (c.from) {
      var from = $(".from", t), a = $("a", from);
      from.hidden = false;
      a.textContent = c.from.text;
      if (c.from.href) { a.href = c.from.href; a.title = "the tile this cell was picked from"; }
    }
    if (c.more) {
      var more = $(".more", t);
      more.hidden = false;
      more.appendChild(document.createTextNode("also: "));
      c.more.forEach(function (m, i) {
        if (i) { more.appendChild(document.createTextNode(", ")); }
        if (m[1]) { var l = document.createElement("a"); l.href = m[0]; l.textContent = "output " + (i + 2); more.appendChild(l); }
        else { more.appendChild(document.createTextNode("output " + (i + 2) + " (missing)")); }
      });
    }
    $(".cmp", t).checked = compare.indexOf(c.id) >= 0;
    if (c.pick.prompt) { $(".prompt .text", t).textContent = c.pick.prompt; } else { $(".prompt", t).remove(); }
    $(".cid", t).textContent = c.id;
    if (c.rid) { $(".rid", t).textContent = " · request " + c.rid; }
    return t;
  }
  // The tile's own values: those the grid's headings do not already say (seed, replicate …).
  function shortLabel(c) {
    var parts = [];
    facets.forEach(function (f, i) {
      if (f.name === view.rows || f.name === view.cols || f.values.length < 2) { return; }
      parts.push(f.name + " " + facetText(f.name, c.k[i]));
    });
    return parts.join(" · ") || c.pick.label || c.id;
  }
  // What other parts of the report may add to a cell: media-check flags and motion (qa), and
  // the blind ranking's score (rating). Each control shows only when its data is there.
  function flagsOf(c) { return (c.qa && Array.isArray(c.qa.flags)) ? c.qa.flags : []; }
  function qaMotion(c) { return (c.qa && typeof c.qa.motion === "number") ? c.qa.motion : null; }
  function score(c) { return (c.rating && typeof c.rating.score === "number") ? c.rating.score : null; }
  var ORDERS = {  // smaller first; a cell without the number goes last
    score: { text: "rating score, best first", key: function (c) { return score(c) === null ? Infinity : -score(c); }, has: score },
    "motion-": { text: "most motion first", key: function (c) { return qaMotion(c) === null ? Infinity : -qaMotion(c); }, has: qaMotion },
    "motion+": { text: "least motion first", key: function (c) { return qaMotion(c) === null ? Infinity : qaMotion(c); }, has: qaMotion }
  };
  function sortKey() { return ORDERS[view.sort] ? ORDERS[view.sort].key : null; }
  function dataControls() {
    var flagged = cells.filter(function (c) { return flagsOf(c).length; }).length;
    var hide = $(".controls .hideflagged");
    hide.hidden = flagged === 0;
    $(".n", hide).textContent = "(" + flagged + ")";
    var sel = $("select[data-sort]");
    Object.keys(ORDERS).forEach(function (name) {
      if (cells.some(function (c) { return ORDERS[name].has(c) !== null; })) { sel.appendChild(new Option(ORDERS[name].text, name)); }
    });
    $(".controls .sortby").hidden = sel.options.length < 2;
  }
  function load(v) { if (v.dataset.src && !v.getAttribute("src")) { v.src = v.dataset.src; } }

  // --- controls ----------------------------------------------------------------------------
  function fillAxes() {
    all("select[data-axis]").forEach(function (sel) {
      sel.textContent = "";
      sel.appendChild(new Option("(none)", ""));
      facets.forEach(function (f) { sel.appendChild(new Option(f.name + " (" + f.values.length + ")", f.name)); });
      sel.value = view[sel.dataset.axis] || "";
    });
    var box = $(".controls .filters");
    box.textContent = "";
    facets.forEach(function (f) {
      if (f.name === view.rows || f.name === view.cols || f.values.length > S.max_filter_values) { return; }
      var label = document.createElement("label"), sel = document.createElement("select");
      label.textContent = f.name + " ";
      sel.dataset.filter = f.name;
      sel.appendChild(new Option("all", ""));
      f.values.forEach(function (text, i) { sel.appendChild(new Option(text, String(i))); });
      sel.value = view.filters[f.name] === undefined ? "" : String(view.filters[f.name]);
      label.appendChild(sel);
      box.appendChild(label);
    });
  }
  document.addEventListener("change", function (e) {
    var t = e.target;
    if (t.matches("select[data-axis]")) {
      var which = t.dataset.axis, other = which === "rows" ? "cols" : "rows";
      var chosen = t.value || null;
      if (chosen && chosen === view[other]) { view[other] = view[which]; }  // a swap
      view[which] = chosen;
      delete view.filters[view.rows];
      delete view.filters[view.cols];
      view.page = 0;
      fillAxes();
      render();
    } else if (t.matches("select[data-filter]")) {
      if (t.value === "") { delete view.filters[t.dataset.filter]; } else { view.filters[t.dataset.filter] = Number(t.value); }
      view.page = 0;
      render();
    } else if (t.matches("select[data-states]")) {
      view.states = t.value;
      view.page = 0;
      render();
    } else if (t.matches("input[data-hide-flagged]")) {
      view.hideFlagged = t.checked;
      view.page = 0;
      render();
    } else if (t.matches("select[data-sort]")) {
      view.sort = t.value;
      view.page = 0;
      render();
    } else if (t.matches("select[data-size]")) {
      view.size = t.value;
      fit();
    } else if (t.matches("input[data-details]")) {
      view.details = t.checked;
      fit();
    } else if (t.matches("input[data-compare-loop]")) {
      compareLoop(t.checked);
    } else if (t.matches("input.cmp")) {
      toggleCompare(t.closest(".tile").dataset.id, t);
    }
  });
  document.addEventListener("click", function (e) {
    var t = e.target;
    var star = t.closest(".star");
    if (star) { toggleStar(star.closest(".tile").dataset.id); return; }
    var strip = t.closest("img.strip");
    if (strip) { seekFromStrip(strip, e); return; }
    var b = t.closest("button");
    if (!b) { return; }
    if (b.dataset.page) { view.page += Number(b.dataset.page); render(); window.scrollTo(0, $(".controls").offsetTop); return; }
    if (b.dataset.picks === "download") { download(); return; }
    if (b.dataset.picks === "yaml") { showYaml(); return; }
    if (b.dataset.picks === "clear") { if (confirm("Forget every pick of this job?")) { picks.clear(); savePicks(); render(); } return; }
    if (b.hasAttribute("data-yaml-close")) { $(".yaml-view").hidden = true; return; }
    if (b.hasAttribute("data-compare")) { openCompare(); return; }
    if (b.hasAttribute("data-compare-close")) { closeCompare(); return; }
    if (b.hasAttribute("data-compare-play")) { compareToggle(); return; }
    if (b.dataset.compareStep) { compareStep(Number(b.dataset.compareStep)); return; }
    if (b.dataset.compareMode) { compareMode(b.dataset.compareMode); return; }
    if (b.dataset.hear) { compareHear(Number(b.dataset.hear)); return; }
    if (b.dataset.cstar) { toggleStar(b.dataset.cstar); b.textContent = picks.has(b.dataset.cstar) ? "★" : "☆"; return; }
    if (b.dataset.play) {
      var kind = b.dataset.play;
      if (kind === "pause" || b.classList.contains("playing")) { stop(); return; }
      playTogether(groupOf(kind, b.dataset.index), b);
    }
  });
  function seekFromStrip(strip, e) {
    var v = $("video", strip.closest(".tile"));
    if (!v) { return; }
    load(v);
    // the strip is 3 frames across and 2 down, read like text: which of the 6 was clicked
    var box = strip.getBoundingClientRect();
    var col = Math.min(2, Math.floor(3 * (e.clientX - box.left) / box.width));
    var line = Math.min(1, Math.floor(2 * (e.clientY - box.top) / box.height));
    var at = (line * 3 + col + 0.5) / 6;
    var go = function () { v.currentTime = Math.max(0, Math.min(1, at)) * (v.duration || 0); };
    if (v.readyState >= 1) { go(); } else { v.addEventListener("loadedmetadata", go, { once: true }); }
  }

  // --- playing in sync ---------------------------------------------------------------------
  var leader = null, group = [];
  function groupOf(kind, index) {
    var sel = kind === "all" ? ".grid video" : '.slot[data-' + kind + '="' + index + '"] video';
    return all(sel);
  }
  function stop() {
    all(".grid video").forEach(function (v) { v.pause(); });
    all("button.playing").forEach(function (b) { b.classList.remove("playing"); });
    group = []; leader = null;
  }
  // Play videos from their first frame at the same moment; the first leads and the others are
  // pulled back into step when they drift.
  function playTogether(videos, button) {
    stop();
    if (!videos.length) { return; }
    group = videos; leader = videos[0];
    videos.forEach(function (v) { load(v); v.currentTime = 0; });
    videos.forEach(function (v) {
      var p = v.play();
      if (p && p.catch) { p.catch(function () { /* autoplay refused or no media */ }); }
    });
    if (button) { button.classList.add("playing"); }
  }
  function keepInStep(lead, videos) {
    if (!lead || lead.paused) { return; }
    videos.forEach(function (v) {
      if (v !== lead && Math.abs(v.currentTime - lead.currentTime) > 0.12) { v.currentTime = lead.currentTime; }
    });
  }
  setInterval(function () { keepInStep(leader, group); keepInStep(cmpLeader, cmpVideos); }, 250);

  // --- compare: two to four tiles, large, side by side, in sync ----------------------------
  var cmpLeader = null, cmpVideos = [];
  function toggleCompare(id, box) {
    var at = compare.indexOf(id);
    if (at >= 0) { compare.splice(at, 1); }
    else if (compare.length >= 4) { if (box) { box.checked = false; } flash("compare takes at most 4 tiles"); return; }
    else { compare.push(id); }
    var tileEl = document.getElementById("cell-" + id);
    if (tileEl) { $(".cmp", tileEl).checked = compare.indexOf(id) >= 0; }
    var b = $("[data-compare]");
    b.disabled = compare.length < 2;
    b.textContent = "compare" + (compare.length ? " (" + compare.length + ")" : "");
  }
  function flash(text) { $(".controls .count").textContent = text; }
  // Compare covers the whole page (nothing of it shows through or scrolls behind). Side by
  // side, or wipe: the second clip over the first, cut at a slider. Every clip plays, seeks,
  // steps a frame (`,` `.`) and loops together; one at a time is heard.
  function openCompare() {
    if (compare.length < 2) { return; }
    stop();
    var box = $(".compare-view"), panes = $(".compare-panes", box);
    panes.textContent = "";
    panes.style.setProperty("--n", String(compare.length));
    cmpVideos = [];
    compare.forEach(function (id, i) {
      var c = byId[id], pane = div("pane");
      pane.dataset.id = id;
      var screen = div("screen");
      if (c.video) {
        var v = document.createElement("video");
        v.muted = true; v.loop = $("[data-compare-loop]").checked; v.preload = "auto";
        v.setAttribute("playsinline", "");
        if (c.poster) { v.poster = c.poster; }
        v.src = c.video;
        v.dataset.fps = String(c.fps || 24);
        screen.appendChild(v);
        cmpVideos.push(v);
      } else {
        var ph = div("placeholder"); ph.appendChild(span("big", c.state)); screen.appendChild(ph);
      }
      pane.appendChild(screen);
      var cap = div("caption"), hear = document.createElement("button");
      hear.type = "button"; hear.className = "hear"; hear.dataset.hear = String(i);
      hear.title = "hear this clip, the others muted (" + (i + 1) + ")";
      hear.textContent = "♪ off";
      hear.disabled = !c.video;
      cap.appendChild(hear);
      var star = document.createElement("button");
      star.type = "button"; star.className = "cstar"; star.dataset.cstar = id;
      star.textContent = picks.has(id) ? "★" : "☆"; star.title = "pick this clip";
      cap.appendChild(star);
      cap.appendChild(span("text", (i + 1) + " · " + c.pick.label + " · " + id.slice(0, 8))).title = c.pick.label;
      pane.appendChild(cap);
      panes.appendChild(pane);
    });
    cmpLeader = cmpVideos[0] || null;
    if (cmpLeader) {
      cmpLeader.addEventListener("timeupdate", showCompareTime);
      cmpLeader.addEventListener("seeked", showCompareTime);
      cmpLeader.addEventListener("ended", function () { compareToggle(false); });
    }
    compareMode("side");
    box.hidden = false;
    box.tabIndex = -1;
    box.focus();  // keys go to compare, not to the button that opened it
    document.body.classList.add("comparing");
    compareToggle(true);
  }
  function showCompareTime() {
    if (!cmpLeader || !cmpLeader.duration) { return; }
    $("[data-compare-seek]").value = String(Math.round(1000 * cmpLeader.currentTime / cmpLeader.duration));
    var fps = Number(cmpLeader.dataset.fps);
    $(".cmp-time").textContent = "frame " + Math.floor(cmpLeader.currentTime * fps + 1e-3) + " · " + cmpLeader.currentTime.toFixed(2) + " s";
  }
  // play (true), pause (false) or the other of the two (no argument); all from the leader's time
  function compareToggle(play) {
    var b = $("[data-compare-play]");
    if (!cmpVideos.length) { return; }
    if (play === undefined) { play = cmpLeader.paused; }
    if (play) {
      var t = cmpLeader.ended ? 0 : cmpLeader.currentTime;
      cmpVideos.forEach(function (v) { v.currentTime = t; var p = v.play(); if (p && p.catch) { p.catch(function () {}); } });
      b.textContent = "❚❚ pause";
    } else {
      cmpVideos.forEach(function (v) { v.pause(); });
      b.textContent = "▶ play";
    }
  }
  // every clip paused on the leader's frame plus `by` frames (a frame's middle, so the same
  // frame shows whatever the decoder rounds)
  function compareStep(by) {
    if (!cmpLeader) { return; }
    compareToggle(false);
    var fps = Number(cmpLeader.dataset.fps), last = Math.max(0, Math.floor((cmpLeader.duration || 0) * fps) - 1);
    var frame = Math.max(0, Math.min(last, Math.floor(cmpLeader.currentTime * fps + 1e-3) + by));
    cmpVideos.forEach(function (v) { v.currentTime = (frame + 0.5) / Number(v.dataset.fps); });
  }
  function compareLoop(on) {
    $("[data-compare-loop]").checked = on;
    cmpVideos.forEach(function (v) { v.loop = on; });
  }
  function compareHear(i) {  // i: a pane's index, or -1 for none; the heard one again: none
    var panes = all(".compare-panes .pane");
    var v = panes[i] && $("video", panes[i]);
    var on = v && v.muted ? i : -1;
    panes.forEach(function (pane, j) {
      var video = $("video", pane), b = $(".hear", pane);
      if (video) { video.muted = j !== on; }
      b.textContent = j === on ? "♪ on" : "♪ off";
      b.setAttribute("aria-pressed", j === on ? "true" : "false");
    });
  }
  function compareMode(mode) {
    var panes = $(".compare-panes");
    if (mode === "wipe" && panes.children.length < 2) { mode = "side"; }
    panes.classList.toggle("wipe", mode === "wipe");
    $("[data-compare-wipe]").hidden = mode !== "wipe";
    all("[data-compare-mode]").forEach(function (b) { b.setAttribute("aria-pressed", b.dataset.compareMode === mode ? "true" : "false"); });
    compareWipe(Number($("[data-compare-wipe]").value) / 1000);
  }
  function compareWipe(at) {  // the second clip shows right of `at` (0..1 of the width)
    at = Math.max(0, Math.min(1, at));
    $("[data-compare-wipe]").value = String(Math.round(at * 1000));
    $(".compare-panes").style.setProperty("--wipe", (at * 100) + "%");
  }
  $("[data-compare-seek]").addEventListener("input", function (e) {
    var frac = Number(e.target.value) / 1000;
    cmpVideos.forEach(function (v) { if (v.duration) { v.currentTime = frac * v.duration; } });
  });
  $("[data-compare-wipe]").addEventListener("input", function (e) { compareWipe(Number(e.target.value) / 1000); });
  (function () {  // drag across the clips to move the wipe
    var panes = $(".compare-panes"), dragging = false;
    function at(e) { var r = panes.getBoundingClientRect(); compareWipe((e.clientX - r.left) / r.width); }
    panes.addEventListener("pointerdown", function (e) {
      if (!panes.classList.contains("wipe") || e.target.closest("button")) { return; }
      dragging = true; panes.setPointerCapture(e.pointerId); at(e);
    });
    panes.addEventListener("pointermove", function (e) { if (dragging) { at(e); } });
    panes.addEventListener("pointerup", function () { dragging = false; });
  })();
  function closeCompare() {
    cmpVideos.forEach(function (v) { v.pause(); v.removeAttribute("src"); v.load(); });
    cmpVideos = []; cmpLeader = null;
    $(".compare-view").hidden = true;
    document.body.classList.remove("comparing");
  }

  // --- keyboard: arrows move, space plays, s stars, c compares, Esc closes ---------------------
  function currentTile() {
    var t = document.activeElement && document.activeElement.closest && document.activeElement.closest(".grid .tile");
    return t || $(".grid .tile");
  }
  function move(from, key) {
    var tiles = all(".grid .tile");
    if (!from) { return tiles[0]; }
    var a = from.getBoundingClientRect(), ax = a.left + a.width / 2, ay = a.top + a.height / 2;
    var best = null, bestScore = Infinity;
    tiles.forEach(function (t) {
      if (t === from) { return; }
      var b = t.getBoundingClientRect(), bx = b.left + b.width / 2, by = b.top + b.height / 2;
      var dx = bx - ax, dy = by - ay, along, across;
      if (key === "ArrowRight") { along = dx; across = dy; }
      else if (key === "ArrowLeft") { along = -dx; across = dy; }
      else if (key === "ArrowDown") { along = dy; across = dx; }
      else { along = -dy; across = dx; }
      if (along <= 4) { return; }
      var score = along + 3 * Math.abs(across);
      if (score < bestScore) { bestScore = score; best = t; }
    });
    return best;
  }
  document.addEventListener("keydown", function (e) {
    if (e.altKey || e.ctrlKey || e.metaKey) { return; }
    var tag = e.target.tagName;
    if (!$(".compare-view").hidden) {
      if (e.key === "Escape") { closeCompare(); e.preventDefault(); }
      else if (e.key === " " && !(tag === "BUTTON" && e.target.closest(".compare-view"))) { compareToggle(); e.preventDefault(); }
      else if (e.key === "," || e.key === ".") { compareStep(e.key === "," ? -1 : 1); e.preventDefault(); }
      else if (/^[1-9]$/.test(e.key)) { compareHear(Number(e.key) - 1); }
      else if (e.key === "m" || e.key === "M") { compareHear(-1); }
      else if (e.key === "w" || e.key === "W") { compareMode($(".compare-panes").classList.contains("wipe") ? "side" : "wipe"); }
      else if (e.key === "l" || e.key === "L") { compareLoop(!$("[data-compare-loop]").checked); }
      return;
    }
    if (e.key === "Escape") { $(".yaml-view").hidden = true; return; }
    if (tag === "INPUT" || tag === "SELECT" || tag === "TEXTAREA" || tag === "VIDEO") { return; }
    if (tag === "BUTTON" && (e.key === " " || e.key === "Enter")) { return; }
    var tile = currentTile();
    if (e.key.indexOf("Arrow") === 0) {
      var next = move(document.activeElement && document.activeElement.closest && document.activeElement.closest(".grid .tile"), e.key);
      if (next) { next.focus(); next.scrollIntoView({ block: "nearest", inline: "nearest" }); }
      e.preventDefault();
    } else if (e.key === " " && tile) {
      var v = $("video", tile);
      if (v) { load(v); if (v.paused) { var p = v.play(); if (p && p.catch) { p.catch(function () {}); } } else { v.pause(); } }
      e.preventDefault();
    } else if ((e.key === "s" || e.key === "S") && tile) {
      toggleStar(tile.dataset.id);
    } else if ((e.key === "c" || e.key === "C") && tile) {
      toggleCompare(tile.dataset.id, null);
    } else if (e.key === "d" || e.key === "D") {
      view.details = !$("[data-details]").checked;
      fit();
    }
  });

  // --- a link to #cell-ID: show its page and bring it into view ----------------------------
  function reveal() {
    var m = /^#cell-([0-9a-f]+)$/.exec(location.hash);
    if (!m || !byId[m[1]]) { return; }
    var c = byId[m[1]];
    if (!matches(c)) { view.filters = {}; view.states = "*"; $("select[data-states]").value = "*"; fillAxes(); }
    paginate();
    for (var p = 0; p < pages.length; p++) {
      if (pages[p].some(function (piece) { return piece.cells.indexOf(c) >= 0; })) { view.page = p; break; }
    }
    render();
    var el = document.getElementById("cell-" + c.id);
    if (el) { el.classList.add("target"); el.focus({ preventScroll: true }); el.scrollIntoView({ block: "center" }); }
  }
  window.addEventListener("hashchange", reveal);

  // --- the table of every cell, made when it is opened ---------------------------------------
  var table = $("details.table");
  table.addEventListener("toggle", function () {
    var body = $("tbody", table);
    if (!table.open || body.children.length) { return; }
    var rows = [], limit = 5000;
    cells.slice(0, limit).forEach(function (c) {
      var tr = document.createElement("tr");
      [c.id, c.pick.label, c.state, String(c.tries || 0), c.queue !== undefined ? secs(c.queue) : "–",
       c.gen !== undefined ? secs(c.gen) : "–", c.cost || "–", c.rid || "–"].forEach(function (text, i) {
        var td = document.createElement("td");
        if (i === 0 || i === 7) { var code = document.createElement("code"); code.textContent = text; td.appendChild(code); }
        else { td.textContent = text; }
        tr.appendChild(td);
      });
      rows.push(tr);
    });
    rows.forEach(function (tr) { body.appendChild(tr); });
    if (cells.length > limit) {
      var tr = document.createElement("tr"), td = document.createElement("td");
      td.colSpan = 8; td.textContent = "… and " + (cells.length - limit) + " more: see report.md or report.json";
      tr.appendChild(td); body.appendChild(tr);
    }
  });

  // --- served by `pipeline review` (pipeline/review/app.py) -------------------------------
  // Only when the settings say so: stars are saved in the job's picks.jsonl through the API
  // (the `key` of the page's URL; `rater` names who picked), and the page polls the API for
  // everyone's picks and for a changed job (new cells finished, new votes).
  if (S.served) {
    var query = new URLSearchParams(location.search);
    var apiKey = query.get("key") || "", who = query.get("rater") || "";
    var inFlight = 0, told = false;
    var applyPicks = function (list) {
      picks.clear();
      list.forEach(function (id) { picks.add(id); });
      all(".grid .tile").forEach(function (t) { markStar(t, picks.has(t.dataset.id)); });
      showPicks();
    };
    var poll = function () {
      fetch(S.served.state, { cache: "no-store" }).then(function (r) { return r.json(); }).then(function (d) {
        if (!inFlight) { applyPicks(d.picks || []); }
        if (d.stamp !== S.served.stamp && !told) {
          told = true;
          var note = div("served-note"), b = document.createElement("button");
          note.textContent = "The job has changed (new cells, or votes). ";
          b.type = "button"; b.textContent = "reload";
          b.addEventListener("click", function () { location.reload(); });
          note.appendChild(b);
          note.style.cssText = "position:fixed;right:1em;bottom:1em;z-index:50;background:#ffd;color:#000;padding:.5em 1em;border:1px solid #aa8;border-radius:6px";
          document.body.appendChild(note);
        }
      }, function () { /* the server has stopped: the page stays as it is */ });
    };
    remote = function (id, on) {
      inFlight += 1;
      fetch(S.served.picks + "?key=" + encodeURIComponent(apiKey), {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ cell: id, on: on, by: who || null })
      }).then(function (r) {
        return r.json().then(function (d) { if (!r.ok) { flash("the star was not saved: " + (d.error || r.status)); } });
      }, function () { flash("the star was not saved: the server cannot be reached"); })
        .then(function () { inFlight -= 1; poll(); });
    };
    poll();
    setInterval(poll, 1000);
  }

  $(".picks-hint").textContent = S.picks_hint;
  fillAxes();
  dataControls();
  showPicks();
  render();
  reveal();
})();
