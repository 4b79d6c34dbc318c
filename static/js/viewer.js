// The viewer: an image opened over the page it was clicked on (the gallery's grid, the
// results, a job's page), large, with its facts and actions beside it. Any link marked
// data-viewer to an image's page opens here instead. The address is the image's own page
// while it is open, so it can be shared; that page works without JavaScript.
(function () {
  "use strict";
  var IMAGE = /\/gallery\/images\/(\d+)\//;
  var SWIPE = 50; // pixels a finger moves sideways before it counts as a swipe
  var dialog, body, title, status, level;
  var current = null; // the address of the image shown
  var under = null; // the address of the page under the viewer, the one htmx forms act for
  var ticket = 0; // the latest load: an older answer arriving late is dropped
  var popping = false; // closing because the browser went back: no second step back
  var expectBack = false; // closed here, and the step back is on its way
  var zoom = { scale: 1, x: 0, y: 0 };
  var gesture = null; // a pan, a swipe or a pinch under way
  var touches = {}; // the fingers on the image, by pointer id
  var SETTLE = 400; // milliseconds without zooming before the level is said
  var saying = null; // the level waiting to be said

  function imageId(href) {
    var match = IMAGE.exec(href || "");
    return match ? match[1] : null;
  }

  function typing(target) {
    return target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
  }

  // -- Which image is next: the page's own order, so the grid, the results and a job's
  // page all browse the way they read.

  function links() {
    return Array.prototype.filter.call(document.querySelectorAll("a[data-viewer]"), function (a) {
      return !dialog.contains(a) && imageId(a.getAttribute("href"));
    });
  }

  function neighbour(step) {
    var list = links();
    var id = imageId(current);
    var onPage = false;
    for (var at = 0; at < list.length; at++) {
      if (imageId(list[at].getAttribute("href")) !== id) continue;
      onPage = true;
      for (var i = at + step; i >= 0 && i < list.length; i += step) {
        if (imageId(list[i].getAttribute("href")) !== id) return list[i].getAttribute("href");
      }
      break;
    }
    // At an end of the page's own list, that is the end: the gallery's order would step
    // back into the same list (a job's last image to its others). Only a grid with more
    // pages still to load (data-viewer-more) reads on past its last card.
    if (onPage && (step < 0 || !document.querySelector("[data-viewer-more]"))) return null;
    // Past the last card loaded, or an image not on the page: the gallery's order.
    var nav = body.querySelector('[data-nav="' + (step < 0 ? "newer" : "older") + '"]');
    return nav ? nav.getAttribute("href") : null;
  }

  function updateMoves() {
    dialog.querySelectorAll("[data-viewer-move]").forEach(function (button) {
      var none = !neighbour(parseInt(button.dataset.viewerMove, 10));
      if (none && document.activeElement === button) title.focus();
      button.disabled = none;
    });
  }

  // -- Loading an image's panel into the viewer

  function load(href) {
    var mine = ++ticket;
    clearTimeout(saying); // another image: its title is what is said, not the old level
    var focusKept = dialog.contains(document.activeElement) && !body.contains(document.activeElement)
      ? document.activeElement : null;
    dialog.setAttribute("aria-busy", "true");
    var headers = { "HX-Request": "true", "HX-Current-URL": under || location.href };
    return fetch(href, { headers: headers, credentials: "same-origin" })
      .then(function (response) {
        // Sent elsewhere (signed out meanwhile): the page itself, as without the viewer.
        if (response.redirected && !imageId(new URL(response.url).pathname)) {
          location.assign(href);
          throw new Error("Opening its page…");
        }
        if (!response.ok) throw new Error(response.status === 404 ? "This image is no longer in the gallery." : "The image could not be loaded.");
        return response.text();
      })
      .then(function (html) {
        if (mine !== ticket || !dialog.open) return;
        body.innerHTML = html;
        if (window.htmx) window.htmx.process(body);
        var panel = body.querySelector("[data-image-panel]");
        // What the page does for any panel htmx brings in: its pins, its scripted buttons.
        if (panel) panel.dispatchEvent(new CustomEvent("htmx:load", { bubbles: true, detail: { elt: panel } }));
        body.querySelectorAll("[data-pin-toggle]").forEach(function (b) { b.hidden = false; });
        title.textContent = (panel && panel.dataset.title) || "Image";
        status.textContent = title.textContent;
        resetZoom();
        updateMoves();
        if (!focusKept || !focusKept.isConnected || focusKept.disabled) title.focus();
      })
      .catch(function (error) {
        if (mine !== ticket) return;
        status.textContent = error.message;
        body.innerHTML = "";
        var p = document.createElement("p");
        p.className = "viewer-error";
        p.textContent = error.message + " ";
        var a = document.createElement("a");
        a.href = href;
        a.textContent = "Open its page";
        p.appendChild(a);
        body.appendChild(p);
        title.focus();
      })
      .finally(function () {
        if (mine === ticket) dialog.removeAttribute("aria-busy");
      });
  }

  function open(href) {
    guardHtmxHistory();
    if (!dialog.open) {
      under = location.href;
      dialog.showModal();
      title.focus();
      history.pushState({ viewer: href }, "", href);
    } else {
      history.replaceState({ viewer: href }, "", href);
    }
    current = href;
    return load(href);
  }

  function move(step) {
    var href = neighbour(step);
    if (!href || !dialog.open) return;
    current = href;
    history.replaceState({ viewer: href }, "", href);
    load(href);
  }

  // -- The browser's Back and Forward. htmx restores its own pushed pages on popstate; the
  // viewer's steps are not its, so its handler is kept from seeing them.

  function onPop(event) {
    var state = event.state;
    if (expectBack) {
      expectBack = false;
      return true;
    }
    if (state && state.viewer) {
      if (!dialog.open) {
        dialog.showModal();
        title.focus();
      }
      current = state.viewer;
      load(state.viewer);
      return true;
    }
    if (dialog.open) {
      popping = true;
      dialog.close();
      popping = false;
      return true;
    }
    return false;
  }

  function guardHtmxHistory() {
    var theirs = window.onpopstate;
    if (theirs && theirs.viewerGuard) return;
    var guard = function (event) {
      if (onPop(event)) return undefined;
      return theirs ? theirs.call(window, event) : undefined;
    };
    guard.viewerGuard = true;
    window.onpopstate = guard;
  }

  // -- Zoom and pan: the stage holding the image and its pins is scaled and moved as one,
  // so the pins stay on their places.

  function stage() {
    return body.querySelector("[data-pin-stage]");
  }

  function frame() {
    return body.querySelector(".image-full");
  }

  function actualScale(st) {
    return parseInt(st.dataset.width, 10) / st.offsetWidth; // the scale that shows 1:1 pixels
  }

  function limit(value, most) {
    return Math.max(-most, Math.min(most, value));
  }

  function apply() {
    var st = stage();
    var fr = frame();
    if (!st || !fr) return;
    // Never panned past the image's edge: the frame stays covered while it can be.
    var mx = Math.max(0, (st.offsetWidth * zoom.scale - fr.clientWidth) / 2);
    var my = Math.max(0, (st.offsetHeight * zoom.scale - fr.clientHeight) / 2);
    zoom.x = limit(zoom.x, mx);
    zoom.y = limit(zoom.y, my);
    var fit = Math.abs(zoom.scale - 1) < 0.001;
    st.style.transform = fit ? "" : "translate(" + zoom.x + "px, " + zoom.y + "px) scale(" + zoom.scale + ")";
    fr.classList.toggle("is-zoomed", zoom.scale > 1.001);
    var actual = Math.abs(zoom.scale - actualScale(st)) < 0.001;
    level.textContent = fit ? "Fit" : Math.round((zoom.scale / actualScale(st)) * 100) + " %";
    dialog.querySelector('[data-viewer-zoom="fit"]').setAttribute("aria-pressed", fit ? "true" : "false");
    dialog.querySelector('[data-viewer-zoom="actual"]').setAttribute("aria-pressed", actual ? "true" : "false");
  }

  function zoomTo(scale, px, py) {
    var st = stage();
    if (!st) return;
    var least = Math.min(1, actualScale(st));
    var most = Math.max(8, actualScale(st) * 4);
    scale = Math.max(least, Math.min(most, scale));
    px = px || 0;
    py = py || 0;
    // The point under the pointer (from the frame's centre) stays where it is.
    zoom.x = px - (scale / zoom.scale) * (px - zoom.x);
    zoom.y = py - (scale / zoom.scale) * (py - zoom.y);
    zoom.scale = scale;
    apply();
  }

  function resetZoom() {
    zoom = { scale: 1, x: 0, y: 0 };
    apply();
  }

  // The level reached, said once zooming has paused: a wheel or a pinch passes through
  // dozens of levels, and each read out would bury the rest.
  function sayLevel() {
    clearTimeout(saying);
    saying = setTimeout(function () {
      if (dialog.open) status.textContent = "Zoom " + level.textContent;
    }, SETTLE);
  }

  function fromCentre(event) {
    var rect = frame().getBoundingClientRect();
    return [event.clientX - rect.left - rect.width / 2, event.clientY - rect.top - rect.height / 2];
  }

  function zoomButton(name) {
    var st = stage();
    if (!st) return;
    if (name === "fit") resetZoom();
    else if (name === "actual") zoomTo(actualScale(st));
    else if (name === "in") zoomTo(zoom.scale * 1.25);
    else if (name === "out") zoomTo(zoom.scale / 1.25);
    sayLevel();
  }

  // -- Wiring

  function init() {
    dialog = document.getElementById("viewer");
    if (!dialog) return;
    body = dialog.querySelector("[data-viewer-body]");
    title = document.getElementById("viewer-title");
    status = dialog.querySelector("[data-viewer-status]");
    level = dialog.querySelector("[data-viewer-level]");
    guardHtmxHistory();

    dialog.addEventListener("close", function () {
      ticket++;
      clearTimeout(saying);
      body.innerHTML = "";
      // Back on the page at the image last shown, which may not be the one opened (or
      // that link may have been redrawn by a live update meanwhile).
      var id = imageId(current);
      var back = links().filter(function (a) { return imageId(a.getAttribute("href")) === id; })[0];
      if (back) back.focus();
      if (!popping && history.state && history.state.viewer) {
        expectBack = true;
        history.back(); // the address of the page under it, and Forward opens it again
      }
    });
    dialog.addEventListener("click", function (event) {
      if (event.target === dialog) dialog.close(); // the dimmed backdrop, as Escape
      var button = event.target.closest("button");
      if (!button || !dialog.contains(button)) return;
      if (button.hasAttribute("data-viewer-close")) dialog.close();
      else if (button.dataset.viewerMove) move(parseInt(button.dataset.viewerMove, 10));
      else if (button.dataset.viewerZoom) zoomButton(button.dataset.viewerZoom);
    });
    // Requests from the panel act for the page under the viewer (a review there updates
    // the grid's badge), not for the image's address shown meanwhile.
    document.addEventListener("htmx:configRequest", function (event) {
      if (dialog.open && dialog.contains(event.detail.elt) && under) {
        event.detail.headers["HX-Current-URL"] = under;
      }
    });
    document.addEventListener("htmx:afterSwap", function (event) {
      if (!dialog.open) return;
      // What an action answered (variations queued, or why not), read out once.
      var said = dialog.querySelector("[data-announce]");
      if (!said) return;
      status.textContent = said.textContent.trim();
      said.removeAttribute("data-announce");
    });
    window.addEventListener("resize", function () {
      if (dialog.open) apply();
    });
  }

  document.addEventListener("click", function (event) {
    if (!dialog || event.defaultPrevented || event.button !== 0) return;
    if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return; // a new tab
    var link = event.target.closest && event.target.closest("a[data-viewer], [data-viewer-dialog] a[data-nav]");
    if (!link || !imageId(link.getAttribute("href"))) return;
    event.preventDefault();
    event.stopPropagation(); // before htmx's own handler of the panel's newer/older links
    if (dialog.open) {
      current = link.getAttribute("href");
      history.replaceState({ viewer: current }, "", current);
      load(current);
    } else {
      open(link.getAttribute("href"));
    }
  }, true);

  document.addEventListener("keydown", function (event) {
    if (!dialog || !dialog.open || typing(event.target)) return;
    if (event.altKey || event.ctrlKey || event.metaKey) return;
    var step = { ArrowLeft: -1, ArrowRight: 1 }[event.key];
    if (step) {
      event.preventDefault();
      move(step);
    } else if (event.key === "+" || event.key === "=") {
      zoomButton("in");
    } else if (event.key === "-") {
      zoomButton("out");
    }
  });

  document.addEventListener("wheel", function (event) {
    if (!dialog || !dialog.open) return;
    var fr = event.target.closest && event.target.closest("[data-viewer-body] .image-full");
    if (!fr) return;
    event.preventDefault();
    var p = fromCentre(event);
    zoomTo(zoom.scale * Math.exp(-event.deltaY * 0.002), p[0], p[1]);
    sayLevel();
  }, { passive: false });

  function fingers() {
    return Object.keys(touches).map(function (id) { return touches[id]; });
  }

  function spread(points) {
    return Math.hypot(points[0].x - points[1].x, points[0].y - points[1].y) || 1;
  }

  document.addEventListener("pointerdown", function (event) {
    if (!dialog || !dialog.open || event.button !== 0) return;
    var fr = event.target.closest && event.target.closest("[data-viewer-body] .image-full");
    var st = stage();
    if (!fr || !st || st.classList.contains("pinning")) return; // pinning: a drag draws a pin
    if (event.pointerType === "touch") touches[event.pointerId] = { x: event.clientX, y: event.clientY };
    var points = fingers();
    if (points.length === 2) {
      // Two fingers: a pinch zooms around the point between them.
      var middle = fromCentre({ clientX: (points[0].x + points[1].x) / 2, clientY: (points[0].y + points[1].y) / 2 });
      gesture = { kind: "pinch", spread: spread(points), scale: zoom.scale, at: middle };
      event.preventDefault();
    } else if (zoom.scale > 1.001) {
      gesture = { kind: "pan", id: event.pointerId, x: event.clientX - zoom.x, y: event.clientY - zoom.y };
      fr.setPointerCapture(event.pointerId);
      fr.classList.add("is-panning");
      event.preventDefault();
    } else if (event.pointerType === "touch") {
      gesture = { kind: "swipe", id: event.pointerId, x: event.clientX, y: event.clientY };
    }
  });

  document.addEventListener("pointermove", function (event) {
    if (touches[event.pointerId]) touches[event.pointerId] = { x: event.clientX, y: event.clientY };
    if (gesture && gesture.kind === "pinch") {
      var points = fingers();
      if (points.length === 2) {
        zoomTo(gesture.scale * spread(points) / gesture.spread, gesture.at[0], gesture.at[1]);
        sayLevel();
      }
      return;
    }
    if (!gesture || gesture.kind !== "pan" || event.pointerId !== gesture.id) return;
    zoom.x = event.clientX - gesture.x;
    zoom.y = event.clientY - gesture.y;
    apply();
  });

  function endGesture(event) {
    delete touches[event.pointerId];
    if (gesture && gesture.kind === "pinch") {
      if (fingers().length < 2) gesture = null; // the finger left is not a swipe
      return;
    }
    if (!gesture || event.pointerId !== gesture.id) return;
    var done = gesture;
    gesture = null;
    var fr = frame();
    if (fr) fr.classList.remove("is-panning");
    if (done.kind !== "swipe" || event.type === "pointercancel") return;
    var dx = event.clientX - done.x;
    var dy = event.clientY - done.y;
    if (Math.abs(dx) > SWIPE && Math.abs(dx) > Math.abs(dy) * 1.5) move(dx < 0 ? 1 : -1);
  }
  document.addEventListener("pointerup", endGesture);
  document.addEventListener("pointercancel", endGesture);

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
