(function () {
  "use strict";
  var all = function (sel, root) { return Array.prototype.slice.call((root || document).querySelectorAll(sel)); };
  var PROBLEMS = ["failed", "retry", "unknown", "cancelled", "pending", "queued", "running", "downloading", "orphaned"];
  var leader = null;
  var group = [];

  function shown(video) { return !video.closest(".tile").hidden; }

  function groupOf(kind, index) {
    if (kind === "all") { return all("video").filter(shown); }
    return all('.slot[data-' + kind + '="' + index + '"] video').filter(shown);
  }

  function stop() {
    all("video").forEach(function (v) { v.pause(); });
    all("button.playing").forEach(function (b) { b.classList.remove("playing"); });
    group = []; leader = null;
  }

  // Play a set of videos from their first frame at the same moment; the first one leads and
  // the others are pulled back into step when they drift.
  function playTogether(videos, button) {
    stop();
    if (!videos.length) { return; }
    group = videos; leader = videos[0];
    videos.forEach(function (v) { v.currentTime = 0; });
    videos.forEach(function (v) {
      var p = v.play();
      if (p && p.catch) { p.catch(function () { /* autoplay refused or no media: nothing to do */ }); }
    });
    if (button) { button.classList.add("playing"); }
  }

  function keepInStep() {
    if (!leader || leader.paused) { return; }
    group.forEach(function (v) {
      if (v !== leader && Math.abs(v.currentTime - leader.currentTime) > 0.12) {
        v.currentTime = leader.currentTime;
      }
    });
  }
  setInterval(keepInStep, 250);

  document.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-play]");
    if (!button) { return; }
    var kind = button.getAttribute("data-play");
    if (kind === "pause" || button.classList.contains("playing")) { stop(); return; }
    playTogether(groupOf(kind, button.getAttribute("data-index")), button);
  });

  function applyFilters() {
    var chosen = all("select[data-filter]").map(function (s) { return [s.getAttribute("data-filter"), s.value]; });
    var stateSelect = document.querySelector("select[data-states]");
    var wanted = stateSelect ? stateSelect.value : "*";
    var visible = 0;
    var tiles = all(".tile");
    tiles.forEach(function (tile) {
      var ok = chosen.every(function (c) { return c[1] === "*" || tile.getAttribute("data-f" + c[0]) === c[1]; });
      var state = tile.getAttribute("data-state");
      if (wanted === "done") { ok = ok && state === "done"; }
      if (wanted === "problem") { ok = ok && PROBLEMS.indexOf(state) >= 0; }
      tile.hidden = !ok;
      if (!ok) { var v = tile.querySelector("video"); if (v) { v.pause(); } }
      if (ok) { visible += 1; }
    });
    var count = document.querySelector(".controls .count");
    if (count) { count.textContent = visible + " of " + tiles.length + " cells shown"; }
  }
  all("select[data-filter], select[data-states]").forEach(function (s) { s.addEventListener("change", applyFilters); });
  applyFilters();
})();
