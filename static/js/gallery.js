// The gallery's lightbox: images open over the grid, and the arrow keys browse them.
// Without JavaScript the same links open each image's own page.
(function () {
  "use strict";

  function typing(target) {
    return target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
  }

  document.addEventListener("keydown", function (event) {
    if (typing(event.target) || event.altKey || event.ctrlKey || event.metaKey) return;
    var name = { ArrowLeft: "newer", ArrowRight: "older" }[event.key];
    if (!name) return;
    var dialog = document.getElementById("lightbox");
    var scope = dialog && dialog.open ? dialog : document;
    var link = scope.querySelector('[data-image-panel] [data-nav="' + name + '"]');
    if (link) {
      event.preventDefault();
      link.click();
    }
  });

  document.addEventListener("htmx:afterSwap", function (event) {
    var dialog = document.getElementById("lightbox");
    if (dialog && event.detail.target.id === "lightbox-body" && !dialog.open) {
      dialog.showModal();
    }
  });

  document.addEventListener("click", function (event) {
    // A click on the dimmed backdrop closes the lightbox, as Escape does.
    var dialog = document.getElementById("lightbox");
    if (dialog && event.target === dialog) dialog.close();
  });
})();

// The compare page's slider: A on the left of the handle, B on the right.
document.addEventListener("input", function (event) {
  var range = event.target.closest && event.target.closest("[data-compare-range]");
  if (!range) return;
  range.closest("[data-compare-slider]").style.setProperty("--split", range.value + "%");
});

// Pinning a comment to an area: drag on the image, or type the numbers in the field.
(function () {
  "use strict";
  var drag = null;

  function stageOf(el) {
    var panel = el.closest("[data-image-panel]");
    return panel && panel.querySelector("[data-pin-stage]");
  }

  function toImage(stage, event) {
    var img = stage.querySelector("img");
    var rect = img.getBoundingClientRect();
    var w = parseInt(stage.dataset.width, 10);
    var h = parseInt(stage.dataset.height, 10);
    var x = Math.round(((event.clientX - rect.left) / rect.width) * w);
    var y = Math.round(((event.clientY - rect.top) / rect.height) * h);
    return [Math.min(Math.max(x, 0), w), Math.min(Math.max(y, 0), h)];
  }

  function draft(stage) {
    var el = stage.querySelector(".pin-draft");
    if (!el) {
      el = document.createElement("span");
      el.className = "region pin-draft";
      stage.appendChild(el);
    }
    return el;
  }

  function show(stage, box) {
    var w = parseInt(stage.dataset.width, 10);
    var h = parseInt(stage.dataset.height, 10);
    var el = draft(stage);
    el.style.left = (box[0] / w) * 100 + "%";
    el.style.top = (box[1] / h) * 100 + "%";
    el.style.width = ((box[2] - box[0]) / w) * 100 + "%";
    el.style.height = ((box[3] - box[1]) / h) * 100 + "%";
  }

  document.addEventListener("click", function (event) {
    var toggle = event.target.closest && event.target.closest("[data-pin-toggle]");
    if (!toggle) return;
    var stage = stageOf(toggle);
    var on = toggle.getAttribute("aria-pressed") !== "true";
    toggle.setAttribute("aria-pressed", on ? "true" : "false");
    if (stage) stage.classList.toggle("pinning", on);
  });

  document.addEventListener("pointerdown", function (event) {
    var stage = event.target.closest && event.target.closest("[data-pin-stage].pinning");
    if (!stage || event.button !== 0) return;
    var start = toImage(stage, event);
    drag = { stage: stage, start: start };
    stage.setPointerCapture(event.pointerId);
    event.preventDefault();
  });

  document.addEventListener("pointermove", function (event) {
    if (!drag) return;
    var p = toImage(drag.stage, event);
    var s = drag.start;
    drag.box = [Math.min(s[0], p[0]), Math.min(s[1], p[1]), Math.max(s[0], p[0]), Math.max(s[1], p[1])];
    show(drag.stage, drag.box);
  });

  document.addEventListener("pointerup", function () {
    if (!drag) return;
    var box = drag.box;
    var panel = drag.stage.closest("[data-image-panel]");
    drag = null;
    if (!box || box[2] - box[0] < 2 || box[3] - box[1] < 2) return;
    var field = panel.querySelector("[data-pin-box]");
    if (field) field.value = box.join(",");
  });

  document.addEventListener("htmx:load", function (event) {
    event.detail.elt.querySelectorAll && event.detail.elt.querySelectorAll("[data-pin-toggle]").forEach(function (b) { b.hidden = false; });
  });
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-pin-toggle]").forEach(function (b) { b.hidden = false; });
  });
})();

// A comment sent: its pin is drawn from the server now, so the draft and the mode go.
document.addEventListener("htmx:afterSwap", function (event) {
  if (!/^comments-/.test(event.detail.target.id || "")) return;
  var panel = document.querySelector("[data-image-panel]");
  if (!panel) return;
  panel.querySelectorAll(".pin-draft").forEach(function (el) { el.remove(); });
  var stage = panel.querySelector("[data-pin-stage]");
  if (stage) stage.classList.remove("pinning");
});
