// The image page's own arrow keys: its newer and older links. Over another page the
// viewer (viewer.js) has the arrow keys instead.
(function () {
  "use strict";

  function typing(target) {
    return target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
  }

  document.addEventListener("keydown", function (event) {
    if (typing(event.target) || event.altKey || event.ctrlKey || event.metaKey) return;
    var viewer = document.getElementById("viewer");
    if (viewer && viewer.open) return;
    var name = { ArrowLeft: "newer", ArrowRight: "older" }[event.key];
    if (!name) return;
    var link = document.querySelector('[data-image-panel] [data-nav="' + name + '"]');
    if (link) {
      event.preventDefault();
      link.click();
    }
  });
})();

// The selection bar: how many images are ticked, said politely to screen readers, and
// whether they can be compared (two to four). The bar shows only while images are ticked,
// by a CSS rule that works before this runs; nothing here moves the focus into it.
(function () {
  "use strict";
  var MOST = 4;
  var WORDS = ["", "one", "two", "three", "four"];
  var said = null; // the count last announced; null until the page has been counted once
  var ticked = null; // the checkbox last changed, where the focus goes back on Clear

  function reason(n) {
    if (n === 1) return "Select one more to compare.";
    if (n > MOST) return "Compare takes up to four images; untick " + (n - MOST) + ".";
    return "";
  }

  function update() {
    var form = document.getElementById("selection");
    if (!form) return;
    // A set's card counts as the images it holds.
    var n = 0;
    document.querySelectorAll(".card-select:checked").forEach(function (box) {
      n += parseInt(box.dataset.count, 10) || 1;
    });
    form.querySelector("[data-selection-count]").textContent = n + " selected";
    var compare = form.querySelector("[data-compare]");
    compare.disabled = n < 2 || n > MOST;
    compare.textContent = compare.disabled ? "Compare" : "Compare " + WORDS[n];
    form.querySelector("[data-compare-why]").textContent = reason(n);
    // The grid's filters change the address without a reload: come back to what is shown.
    form.querySelector("[data-selection-next]").value = location.pathname + location.search;
    var status = document.querySelector("[data-selection-status]");
    if (status && said !== null && n !== said) {
      status.textContent = n ? (n + " selected" + (n > MOST ? ". " + reason(n) : "")) : "Selection cleared";
    }
    said = n;
    // Room below the grid for the bar, so it never covers the last cards or the focus.
    document.documentElement.style.setProperty("--selection-room", n ? form.offsetHeight + "px" : "0px");
    if (!n && form.contains(document.activeElement)) {
      // The bar is gone with the focus in it: back to the grid, not to the top of the page.
      var back = ticked && ticked.isConnected ? ticked : document.querySelector(".card-select");
      if (back) back.focus();
    }
  }

  document.addEventListener("change", function (event) {
    if (!event.target.classList || !event.target.classList.contains("card-select")) return;
    ticked = event.target;
    update();
  });
  document.addEventListener("click", function (event) {
    // An opened set's "Select the whole set": each of its images ticked, as if by hand.
    if (!event.target.closest || !event.target.closest("[data-select-all]")) return;
    document.querySelectorAll(".gallery-grid .card-select").forEach(function (box) {
      box.checked = true;
    });
    update();
  });
  document.addEventListener("reset", function (event) {
    // Fired before the form is reset; count once it has been.
    if (event.target.id === "selection") setTimeout(update, 0);
  });
  document.addEventListener("keydown", function (event) {
    // Enter in "New board" creates it, rather than pressing the bar's first button.
    var name = event.target.dataset && event.target.dataset.enterPresses;
    if (event.key !== "Enter" || !name) return;
    event.preventDefault();
    document.getElementById(name).click();
  });
  document.addEventListener("htmx:afterSwap", update); // filters changed: a new grid
  window.addEventListener("pageshow", update); // back to the page, its ticks kept
  window.addEventListener("resize", function () {
    if (said) update();
  });
  document.addEventListener("DOMContentLoaded", update);
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
  // Found again by its id: the swap replaced the element the event names.
  var comments = document.getElementById(event.detail.target.id);
  var panel = comments && comments.closest("[data-image-panel]");
  if (!panel) return;
  panel.querySelectorAll(".pin-draft").forEach(function (el) { el.remove(); });
  var stage = panel.querySelector("[data-pin-stage]");
  if (stage) stage.classList.remove("pinning");
});

// The gallery's filters besides the search: folded away on a phone (where they would fill the
// first screen), open on a wider one, and the fold's summary counts those in use.
(function () {
  "use strict";
  var WIDE = window.matchMedia("(min-width: 700px)");

  function inUse(more) {
    return Array.prototype.filter.call(more.querySelectorAll("select, input"), function (field) {
      return field.type === "checkbox" ? field.checked : field.value !== "";
    }).length;
  }

  function count(more) {
    var n = inUse(more);
    more.querySelector("[data-filter-count]").textContent = n ? " (" + n + " set)" : "";
  }

  function unfold() {
    document.querySelectorAll("[data-filter-more]").forEach(function (more) {
      if (WIDE.matches) more.open = true;
    });
  }

  document.addEventListener("change", function (event) {
    var more = event.target.closest && event.target.closest("[data-filter-more]");
    if (more) count(more);
  });
  WIDE.addEventListener("change", unfold);
  document.addEventListener("DOMContentLoaded", unfold);
})();
