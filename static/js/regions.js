// The edit form's reference images: adding them (picker, drop, paste), ordering them as
// "Image 1…N" in a strip of thumbnails (dragged, or moved with their arrow buttons or
// Alt+arrows), and drawing up to the model's number of regions on one opened large.
//
// Regions are kept in the pixels of the normalised image the server stored, which is the
// image shown here and the one the provider receives, so EXIF rotation and any scaling
// happened before anyone drew on it. On screen a region is placed in percentages of the
// image, so zooming or resizing the window never changes what is sent.
//
// The studio keeps the form's images, their order and regions for their owner (a day, or
// until a job uses them): each change made here is sent to it as it happens, so a reload
// or a visit to another page finds the form as it was left.
(function () {
  "use strict";

  var ZOOMS = [1, 1.5, 2, 3, 4];
  var MIN_DRAG_PX = 4; // a click, not a drag: no region

  function csrfToken(form) {
    var field = form.querySelector("[name=csrfmiddlewaretoken]");
    return field ? field.value : "";
  }

  // -- Regions on one image -------------------------------------------------------------

  function RegionEditor(card, form) {
    this.card = card;
    this.form = form;
    this.width = parseInt(card.dataset.width, 10);
    this.height = parseInt(card.dataset.height, 10);
    this.max = parseInt(form.dataset.maxBoxes, 10) || 0;
    this.stage = card.querySelector("[data-stage]");
    this.img = this.stage.querySelector("img");
    this.field = card.querySelector("[data-boxes]");
    this.message = card.querySelector("[data-region-message]");
    this.zoom = 0;
    // "Fit" shows the whole image in its frame, a tall one by its height (see app.css).
    this.stage.style.setProperty("--ratio", this.width / this.height);
    this.boxes = parse(this.field.value);
    this.bind();
    this.render();
    showRegionCount(card, this.boxes.length);
  }

  // The tile says how many regions its image carries, as a badge and to a screen reader.
  function showRegionCount(card, count) {
    var badge = card.querySelector("[data-regions-badge]");
    if (badge) {
      badge.hidden = !count;
      badge.querySelector("[data-regions-count]").textContent = String(count);
    }
    card.dataset.regions = String(count);
    labelTile(card);
  }

  function parse(text) {
    var boxes = [];
    text.split(";").forEach(function (part) {
      var nums = part.split(",").map(function (v) { return parseInt(v, 10); });
      if (nums.length === 4 && nums.every(function (v) { return !isNaN(v); })) boxes.push(nums);
    });
    return boxes;
  }

  RegionEditor.prototype.position = function () {
    return sentCards(this.form).indexOf(this.card) + 1;
  };

  RegionEditor.prototype.which = function () {
    var n = this.position();
    return n ? "image " + n : "the image not sent";
  };

  RegionEditor.prototype.say = function (text) {
    this.message.textContent = text;
  };

  RegionEditor.prototype.toImage = function (event) {
    var rect = this.img.getBoundingClientRect();
    var x = ((event.clientX - rect.left) / rect.width) * this.width;
    var y = ((event.clientY - rect.top) / rect.height) * this.height;
    return [clamp(Math.round(x), 0, this.width), clamp(Math.round(y), 0, this.height)];
  };

  function clamp(v, low, high) { return Math.min(Math.max(v, low), high); }

  RegionEditor.prototype.full = function () {
    if (this.boxes.length < this.max) return false;
    var which = this.which();
    this.say(which.charAt(0).toUpperCase() + which.slice(1) + " already has " + this.max +
      " regions, the most " + this.form.dataset.modelLabel + " takes. Delete one to draw another.");
    return true;
  };

  RegionEditor.prototype.commit = function () {
    this.field.value = this.boxes.map(function (b) { return b.join(","); }).join("; ");
    this.render();
    showRegionCount(this.card, this.boxes.length);
    changed(this.form);
  };

  RegionEditor.prototype.render = function () {
    var self = this;
    var active = document.activeElement;
    var focused = active && this.stage.contains(active) ? active.dataset.region : null;
    this.stage.querySelectorAll(".region").forEach(function (el) { el.remove(); });
    this.boxes.forEach(function (box, i) {
      var el = document.createElement("div");
      el.className = "region";
      el.tabIndex = 0;
      el.dataset.region = String(i);
      el.setAttribute("role", "group");
      el.setAttribute("aria-label", "Region " + (i + 1) + " of " + self.which() + ": " +
        box[0] + "," + box[1] + " to " + box[2] + "," + box[3] +
        ". Arrow keys move it, Alt with arrows resizes, Shift for larger steps, Delete removes.");
      el.style.left = (box[0] / self.width) * 100 + "%";
      el.style.top = (box[1] / self.height) * 100 + "%";
      el.style.width = ((box[2] - box[0]) / self.width) * 100 + "%";
      el.style.height = ((box[3] - box[1]) / self.height) * 100 + "%";
      var label = document.createElement("span");
      label.className = "region-number";
      label.textContent = String(i + 1);
      el.appendChild(label);
      ["nw", "ne", "sw", "se"].forEach(function (corner) {
        var handle = document.createElement("span");
        handle.className = "region-handle region-" + corner;
        handle.dataset.corner = corner;
        el.appendChild(handle);
      });
      var remove = document.createElement("button");
      remove.type = "button";
      remove.className = "region-delete";
      remove.setAttribute("aria-label", "Delete region " + (i + 1));
      remove.textContent = "✕";
      remove.dataset.deleteRegion = String(i);
      el.appendChild(remove);
      self.stage.appendChild(el);
      if (focused === String(i)) el.focus();
    });
  };

  RegionEditor.prototype.focusAfterDelete = function (index) {
    var next = this.stage.querySelector('[data-region="' + Math.max(0, index - 1) + '"]');
    (next || this.card.querySelector("[data-add-region]") || this.card).focus();
  };

  RegionEditor.prototype.bind = function () {
    var self = this;
    var drag = null;

    this.stage.addEventListener("pointerdown", function (event) {
      if (event.button !== 0) return;
      var del = event.target.closest("[data-delete-region]");
      if (del) return; // its click handler removes it
      var regionEl = event.target.closest(".region");
      var point = self.toImage(event);
      if (regionEl) {
        var index = parseInt(regionEl.dataset.region, 10);
        var corner = event.target.dataset.corner;
        drag = { mode: corner ? "resize" : "move", index: index, corner: corner,
          start: point, origin: self.boxes[index].slice() };
      } else {
        if (self.full()) return;
        self.say("");
        self.boxes.push([point[0], point[1], point[0], point[1]]);
        drag = { mode: "draw", index: self.boxes.length - 1, start: point, screen: [event.clientX, event.clientY] };
        self.render();
      }
      self.stage.setPointerCapture(event.pointerId);
      event.preventDefault();
    });

    this.stage.addEventListener("pointermove", function (event) {
      if (!drag) return;
      var p = self.toImage(event);
      var box = self.boxes[drag.index];
      if (drag.mode === "draw") {
        box[0] = Math.min(drag.start[0], p[0]);
        box[1] = Math.min(drag.start[1], p[1]);
        box[2] = Math.max(drag.start[0], p[0]);
        box[3] = Math.max(drag.start[1], p[1]);
      } else if (drag.mode === "move") {
        var o = drag.origin;
        var dx = clamp(p[0] - drag.start[0], -o[0], self.width - o[2]);
        var dy = clamp(p[1] - drag.start[1], -o[1], self.height - o[3]);
        self.boxes[drag.index] = [o[0] + dx, o[1] + dy, o[2] + dx, o[3] + dy];
      } else {
        var b = drag.origin.slice();
        if (drag.corner.indexOf("w") >= 0) b[0] = p[0]; else b[2] = p[0];
        if (drag.corner.indexOf("n") >= 0) b[1] = p[1]; else b[3] = p[1];
        self.boxes[drag.index] = [Math.min(b[0], b[2]), Math.min(b[1], b[3]),
          Math.max(b[0], b[2]), Math.max(b[1], b[3])];
      }
      self.render();
    });

    function finish(event) {
      if (!drag) return;
      var box = self.boxes[drag.index];
      var index = drag.index;
      var tooSmall = box[2] - box[0] < 1 || box[3] - box[1] < 1;
      if (drag.mode === "draw") {
        var moved = Math.abs(event.clientX - drag.screen[0]) + Math.abs(event.clientY - drag.screen[1]);
        tooSmall = tooSmall || moved < MIN_DRAG_PX;
      }
      if (tooSmall) {
        // A click, or a region squeezed to nothing: no region (the server would refuse it).
        self.boxes.splice(index, 1);
        index = self.boxes.length - 1;
      }
      drag = null;
      self.commit();
      var el = self.stage.querySelector('[data-region="' + index + '"]');
      if (el) el.focus({ preventScroll: true });
    }
    this.stage.addEventListener("pointerup", finish);
    this.stage.addEventListener("pointercancel", finish);

    this.stage.addEventListener("click", function (event) {
      var del = event.target.closest("[data-delete-region]");
      if (!del) return;
      var index = parseInt(del.dataset.deleteRegion, 10);
      self.boxes.splice(index, 1);
      self.say("Region " + (index + 1) + " deleted.");
      self.commit();
      self.focusAfterDelete(index);
    });

    this.stage.addEventListener("keydown", function (event) {
      var regionEl = event.target.closest(".region");
      if (!regionEl) return;
      var index = parseInt(regionEl.dataset.region, 10);
      var box = self.boxes[index].slice();
      if (event.key === "Delete" || event.key === "Backspace") {
        self.boxes.splice(index, 1);
        self.commit();
        self.say("Region " + (index + 1) + " deleted.");
        self.focusAfterDelete(index);
        event.preventDefault();
        return;
      }
      var keys = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
      var dir = keys[event.key];
      if (!dir) return;
      var step = Math.max(1, Math.round(Math.max(self.width, self.height) / 100));
      if (event.shiftKey) step *= 10;
      var dx = dir[0] * step;
      var dy = dir[1] * step;
      if (event.altKey) {
        box[2] = clamp(box[2] + dx, box[0] + 1, self.width);
        box[3] = clamp(box[3] + dy, box[1] + 1, self.height);
      } else {
        dx = clamp(dx, -box[0], self.width - box[2]);
        dy = clamp(dy, -box[1], self.height - box[3]);
        box = [box[0] + dx, box[1] + dy, box[2] + dx, box[3] + dy];
      }
      self.boxes[index] = box;
      self.commit();
      event.preventDefault();
    });

    var add = this.card.querySelector("[data-add-region]");
    if (add) {
      add.addEventListener("click", function () {
        if (self.full()) return;
        var w = Math.round(self.width * 0.4);
        var h = Math.round(self.height * 0.4);
        var x = Math.round((self.width - w) / 2);
        var y = Math.round((self.height - h) / 2);
        self.boxes.push([x, y, x + w, y + h]);
        self.say("Region " + self.boxes.length + " added in the middle; move it with the arrow keys.");
        self.commit();
        var el = self.stage.querySelector('[data-region="' + (self.boxes.length - 1) + '"]');
        if (el) el.focus();
      });
    }

    this.card.querySelectorAll("[data-zoom]").forEach(function (button) {
      button.addEventListener("click", function () {
        self.zoom = clamp(self.zoom + parseInt(button.dataset.zoom, 10), 0, ZOOMS.length - 1);
        self.stage.style.setProperty("--zoom", ZOOMS[self.zoom]);
        self.card.querySelector("[data-zoom-level]").textContent =
          self.zoom === 0 ? "Fit" : ZOOMS[self.zoom] * 100 + "%";
      });
    });

    this.field.addEventListener("change", function () {
      // Typed coordinates win; the server checks them again.
      self.boxes = parse(self.field.value).slice(0, Math.max(self.max, 0));
      self.render();
      showRegionCount(self.card, self.boxes.length);
      changed(self.form);
    });
  };

  // -- The list of reference images -----------------------------------------------------

  function cards(form) {
    return Array.prototype.slice.call(form.querySelectorAll("[data-input]"));
  }

  // The images sent, numbered "Image 1…N"; those set aside for the model keep their place
  // on the form without a number.
  function sentCards(form) {
    return cards(form).filter(function (card) { return !card.hasAttribute("data-aside"); });
  }

  function renumber(form) {
    var sent = sentCards(form);
    cards(form).forEach(function (card) {
      var at = sent.indexOf(card);
      var which = at < 0 ? "the image not sent (" + card.dataset.width + "×" +
        card.dataset.height + ")" : "image " + (at + 1);
      if (at >= 0) card.querySelector("[data-position]").textContent = String(at + 1);
      card.querySelector("[data-remove]").setAttribute("aria-label", "Remove " + which);
      card.querySelectorAll("[data-move]").forEach(function (button) {
        var earlier = button.dataset.move === "-1";
        button.setAttribute("aria-label", "Move " + which + (earlier ? " earlier" : " later"));
      });
      var img = card.querySelector("[data-stage] img");
      var title = which.charAt(0).toUpperCase() + which.slice(1);
      if (img) img.alt = title;
      var heading = card.querySelector("[data-detail-title]");
      if (heading) heading.textContent = title;
      card.dataset.which = which;
      labelTile(card);
      if (card.regions) card.regions.render();
    });
  }

  function labelTile(card) {
    var open = card.querySelector("[data-open]");
    if (!open || !card.dataset.which) return;
    var count = parseInt(card.dataset.regions || "0", 10);
    open.setAttribute("aria-label", "Open " + card.dataset.which +
      (count ? " (" + count + (count === 1 ? " region" : " regions") + ")" : "") +
      " to draw regions and read its notes");
  }

  // -- One image opened large -----------------------------------------------------------

  // Which image is open, kept while the form is redrawn for another model.
  var openId = null;
  var WIDE = "(min-width: 1180px)";

  // On a wide screen the panel lies over the results, which are the rest of the window.
  function place(panel) {
    var pane = document.querySelector("[data-results-pane]");
    ["--pane-top", "--pane-left", "--pane-width", "--pane-height"].forEach(function (name) {
      panel.style.removeProperty(name);
    });
    if (!pane || !window.matchMedia(WIDE).matches) return;
    var rect = pane.getBoundingClientRect();
    var top = Math.max(rect.top, 8);
    var bottom = Math.min(rect.bottom, window.innerHeight - 8);
    if (rect.width < 320 || bottom - top < 320) return; // the stylesheet's place then
    panel.style.setProperty("--pane-top", top + "px");
    panel.style.setProperty("--pane-left", rect.left + "px");
    panel.style.setProperty("--pane-width", rect.width + "px");
    panel.style.setProperty("--pane-height", bottom - top + "px");
  }

  function openCard(card, focus) {
    var form = card.closest("form");
    if (form) cards(form).forEach(function (other) { if (other !== card) closeCard(other, false); });
    var panel = card.querySelector("[data-detail]");
    var opener = card.querySelector("[data-open]");
    if (!panel) return;
    card.classList.add("is-open");
    panel.classList.add("is-open");
    opener.setAttribute("aria-expanded", "true");
    openId = card.dataset.input;
    place(panel);
    if (focus) panel.querySelector("[data-detail-title]").focus();
  }

  function closeCard(card, focus) {
    var panel = card.querySelector("[data-detail]");
    if (!panel || !card.classList.contains("is-open")) return;
    var inside = panel.contains(document.activeElement);
    card.classList.remove("is-open");
    panel.classList.remove("is-open");
    card.querySelector("[data-open]").setAttribute("aria-expanded", "false");
    if (openId === card.dataset.input) openId = null;
    if (focus || inside) card.querySelector("[data-open]").focus({ preventScroll: !focus });
  }

  window.addEventListener("resize", function () {
    var panel = document.querySelector("#edit-form .input-detail.is-open");
    if (panel) place(panel);
  });

  // -- Order ----------------------------------------------------------------------------

  function announceOrder(form, card) {
    var status = form.querySelector("[data-order-status]");
    if (!status) return;
    var at = sentCards(form).indexOf(card);
    var order = sentCards(form).map(function (other, i) {
      return (i + 1) + ": " + other.dataset.width + "×" + other.dataset.height;
    }).join(", ");
    status.textContent = (at < 0 ? "Moved; it is not sent." : "Moved to image " + (at + 1) + ".") +
      " Order now " + order + ".";
  }

  // Moves the card one place among the images; the focused control keeps the focus.
  function move(form, card, step) {
    var sibling = step < 0 ? card.previousElementSibling : card.nextElementSibling;
    while (sibling && !sibling.hasAttribute("data-input")) {
      sibling = step < 0 ? sibling.previousElementSibling : sibling.nextElementSibling;
    }
    if (!sibling) return false;
    var focused = document.activeElement;
    // The neighbour moves, not this card, so nothing focused in it is taken out of the page.
    if (step < 0) card.after(sibling); else card.before(sibling);
    if (focused && card.contains(focused) && document.activeElement !== focused) focused.focus();
    renumber(form);
    changed(form);
    announceOrder(form, card);
    return true;
  }

  // An image set aside only because the model takes no more is sent again once another
  // is removed: the page then says what the server would.
  function bringBack(form) {
    var max = parseInt(form.dataset.maxImages, 10);
    cards(form).forEach(function (card) {
      if (card.dataset.aside !== "count" || sentCards(form).length >= max) return;
      card.removeAttribute("data-aside");
      card.classList.remove("input-aside");
      ["[data-aside-field]", "[data-aside-note]", "[data-aside-chip]"].forEach(function (s) {
        var el = card.querySelector(s);
        if (el) el.remove();
      });
      card.querySelector("[data-insert-ref]").hidden = false;
      // What its tile reads out no longer gives the reason it was set aside.
      var says = card.querySelector("[data-tile-says]");
      if (says) {
        says.textContent = [card.dataset.width + "×" + card.dataset.height + "."].concat(
          Array.prototype.map.call(card.querySelectorAll(".input-notes li"), function (li) {
            return li.textContent;
          })).join(" ");
      }
    });
    var summary = form.querySelector("[data-aside-summary]");
    if (summary && !form.querySelector("[data-aside]")) summary.remove();
  }

  // -- Keeping the form for a reload ----------------------------------------------------

  var REMEMBER_AFTER_MS = 300;
  var rememberTimer = null;
  var removedIds = [];
  // One at a time, so the studio never keeps an older state sent after a newer one.
  var remembering = Promise.resolve();

  function changed(form) {
    if (!form.dataset.stageUrl) return;
    document.body.setAttribute("data-remembering", "");
    clearTimeout(rememberTimer);
    rememberTimer = setTimeout(function () { remember(false); }, REMEMBER_AFTER_MS);
  }

  function remember(leaving) {
    clearTimeout(rememberTimer);
    rememberTimer = null;
    if (leaving) {
      send(true);
    } else {
      remembering = remembering.then(function () { return send(false); });
    }
  }

  function send(leaving) {
    // The form on the page now: a model switch may have redrawn it meanwhile.
    var form = document.getElementById("edit-form");
    if (!form) return Promise.resolve();
    var body = new FormData();
    body.append("csrfmiddlewaretoken", csrfToken(form));
    body.append("remember", "1");
    cards(form).forEach(function (card) {
      body.append("input", card.dataset.input);
      var boxes = card.querySelector("[name='boxes-" + card.dataset.input + "']");
      if (boxes) body.append(boxes.name, boxes.value);
    });
    var removed = removedIds;
    removedIds = [];
    removed.forEach(function (id) { body.append("remove_input", id); });
    var done = function () {
      if (!rememberTimer) document.body.removeAttribute("data-remembering");
    };
    return fetch(form.action, {
      method: "POST",
      body: body,
      headers: { "X-CSRFToken": csrfToken(form) },
      credentials: "same-origin",
      keepalive: leaving, // sent even as the page goes
    }).then(function (response) {
      if (!response.ok) removedIds = removed.concat(removedIds); // asked again next time
    }, function () {
      removedIds = removed.concat(removedIds);
    }).then(done);
  }

  // Leaving before the last change was sent: it is sent now.
  window.addEventListener("pagehide", function () {
    if (rememberTimer) remember(true);
  });

  function initCard(card, form) {
    if (card.dataset.ready) return;
    card.dataset.ready = "1";
    card.querySelectorAll("[data-js-only]").forEach(function (el) { el.hidden = false; });
    var dismiss = card.querySelector("[data-dismiss]");
    if (dismiss) {
      dismiss.addEventListener("click", function () { card.remove(); });
      return;
    }
    if (form.dataset.takesBoxes === "true" && card.querySelector("[data-boxes]")) {
      card.regions = new RegionEditor(card, form);
    }
    card.querySelectorAll("[data-move]").forEach(function (button) {
      button.addEventListener("click", function (event) {
        event.preventDefault();
        button.focus();
        move(form, card, parseInt(button.dataset.move, 10));
      });
    });
    var tile = card.querySelector(".input-tile");
    tile.addEventListener("keydown", function (event) {
      var steps = { ArrowLeft: -1, ArrowUp: -1, ArrowRight: 1, ArrowDown: 1 };
      if (!event.altKey || !steps[event.key]) return;
      event.preventDefault();
      move(form, card, steps[event.key]);
    });
    var opener = card.querySelector("[data-open]");
    opener.setAttribute("aria-controls", "detail-" + card.dataset.input);
    opener.setAttribute("aria-expanded", "false");
    opener.addEventListener("click", function (event) {
      event.preventDefault();
      if (card.classList.contains("is-open")) closeCard(card, true); else openCard(card, true);
    });
    var panel = card.querySelector("[data-detail]");
    panel.querySelector("[data-detail-title]").tabIndex = -1;
    panel.querySelector("[data-close]").addEventListener("click", function (event) {
      event.preventDefault();
      closeCard(card, true);
    });
    panel.addEventListener("keydown", function (event) {
      if (event.key !== "Escape" || event.defaultPrevented) return;
      event.preventDefault();
      closeCard(card, true);
    });
    // On a narrow screen the panel covers the page: moving the focus past it closes it, so
    // the focus never goes to what it hides.
    panel.addEventListener("focusout", function (event) {
      var to = event.relatedTarget;
      if (!to || panel.contains(to) || window.matchMedia(WIDE).matches) return;
      closeCard(card, false);
    });
    card.querySelector("[data-remove]").addEventListener("click", function (event) {
      event.preventDefault();
      var neighbour = card.nextElementSibling || card.previousElementSibling;
      if (openId === card.dataset.input) openId = null;
      card.remove();
      removedIds.push(card.dataset.input);
      bringBack(form);
      renumber(form);
      changed(form);
      // An image set aside has no number to focus: its first button then.
      var target = neighbour && neighbour.querySelector(
        "[data-insert-ref]:not([hidden]), [data-dismiss], [data-move]");
      (target || form.querySelector("input[type=file][name=files]")).focus();
    });
    card.querySelector("[data-insert-ref]").addEventListener("click", function () {
      var prompt = form.querySelector("[name=prompt]");
      var ref = "image " + card.querySelector("[data-position]").textContent;
      var start = prompt.selectionStart;
      var end = prompt.selectionEnd;
      var before = prompt.value.slice(0, start);
      var pad = before && !/\s$/.test(before) ? " " : "";
      prompt.setRangeText(pad + ref + " ", start, end, "end");
      prompt.dispatchEvent(new Event("input"));
      prompt.focus();
    });
  }

  function stage(form, file) {
    var list = form.querySelector("[data-input-cards]");
    var max = parseInt(form.dataset.maxImages, 10);
    var placeholder = document.createElement("li");
    placeholder.className = "input-card input-loading";
    placeholder.textContent = "Checking " + (file.name || "pasted image") + "…";
    list.appendChild(placeholder);
    if (sentCards(form).length >= max) {
      placeholder.remove();
      refuse(form, file, "The model takes at most " + max + (max === 1 ? " image" : " images") + "; remove one to add another.");
      return Promise.resolve();
    }
    var body = new FormData();
    body.append("file", file, file.name || "pasted.png");
    body.append("model", form.dataset.model);
    return fetch(form.dataset.stageUrl, {
      method: "POST",
      body: body,
      headers: { "X-CSRFToken": csrfToken(form) },
      credentials: "same-origin",
    }).then(function (response) {
      return response.text().then(function (html) {
        if (response.status >= 500 || !/^\s*<li/.test(html)) {
          throw new Error("The studio could not take this file (" + response.status + ").");
        }
        var holder = document.createElement("ol");
        holder.innerHTML = html;
        var card = holder.firstElementChild;
        var current = document.getElementById("edit-form");
        if (current !== form) {
          // The model was switched while this image was on its way: the form was redrawn.
          // Add it there and redraw once more, so it is checked against the new model.
          placeholder.remove();
          if (!current) return;
          current.querySelector("[data-input-cards]").appendChild(card);
          var picker = current.querySelector(".model-picker");
          if (picker && window.htmx && !card.hasAttribute("data-refused")) {
            window.htmx.trigger(picker, "change");
          }
          form = current;
        } else {
          placeholder.replaceWith(card);
        }
        if (card.hasAttribute("data-refused")) showPreview(card, file);
        initCard(card, form);
        renumber(form);
      });
    }).catch(function (error) {
      placeholder.remove();
      refuse(form, file, error.message);
    });
  }

  function refuse(form, file, reason) {
    var card = document.createElement("li");
    card.className = "input-card input-refused";
    card.setAttribute("data-refused", "");
    card.innerHTML = '<div class="input-head"><span class="chip chip-refused">Not added</span>' +
      '<span class="input-name"></span><button type="button" class="icon-button" data-dismiss ' +
      'aria-label="Dismiss">✕</button></div><div class="input-preview" data-preview></div>' +
      '<p class="field-error" role="alert"></p>';
    card.querySelector(".input-name").textContent = file.name || "";
    card.querySelector(".field-error").textContent = reason;
    form.querySelector("[data-input-cards]").appendChild(card);
    showPreview(card, file);
    initCard(card, form);
  }

  function showPreview(card, file) {
    var box = card.querySelector("[data-preview]");
    if (!box || !/^image\//.test(file.type)) return;
    var img = document.createElement("img");
    img.alt = "";
    img.src = URL.createObjectURL(file);
    img.onload = function () { URL.revokeObjectURL(img.src); };
    box.appendChild(img);
  }

  function stageAll(form, files) {
    // One at a time, so the images keep the order they were given in.
    var chain = Promise.resolve();
    uploading(form, files.length);
    Array.prototype.forEach.call(files, function (file) {
      var done = function () { uploading(document.getElementById("edit-form") || form, -1); };
      chain = chain.then(function () { return stage(form, file); }).then(done, done);
    });
    return chain;
  }

  // Images still being checked are not in the form yet: an edit sent now would go without
  // them, and "image 2" in the prompt would mean another picture. Counted on the page, as
  // the form may be redrawn (a model switch) while they are on their way.
  var pendingUploads = 0;

  function uploading(form, change) {
    pendingUploads = Math.max(0, pendingUploads + change);
    var note = form.querySelector("[data-submit-wait]");
    if (note && !pendingUploads) note.hidden = true;
  }

  function holdWhileUploading(event) {
    var form = event.target;
    if (form.id !== "edit-form" || !pendingUploads) return;
    if (event.submitter && event.submitter.name) return; // moving or removing an image
    event.preventDefault();
    event.stopPropagation(); // nor sent by htmx, which listens on the form itself
    var note = form.querySelector("[data-submit-wait]");
    if (note) {
      note.textContent = "Wait until the images being checked are added (" + pendingUploads +
        " left), then press Edit again.";
      note.hidden = false;
    }
  }

  // Dragging a thumbnail reorders the images, with a mouse, a pen or a finger (after a
  // short press, so a finger can still scroll the page across the strip).
  function sortable(form) {
    var list = form.querySelector("[data-input-cards]");
    if (!window.Sortable || !list) return;
    window.Sortable.create(list, {
      draggable: "[data-input]",
      handle: ".tile-thumb",
      filter: "button, input",
      preventOnFilter: false,
      // The same dragging for every pointer, drawn by the page rather than the browser.
      forceFallback: true,
      // Touch events, not pointer events: a finger that moves before the press is long
      // enough scrolls the page, and once the drag has begun it no longer can (pointer
      // events would have the browser cancel the drag as it starts to scroll).
      supportPointer: false,
      fallbackTolerance: 4,
      delay: 180,
      delayOnTouchOnly: true,
      touchStartThreshold: 5,
      animation: 0,
      onEnd: function (event) {
        var card = event.item;
        var opener = card.querySelector("[data-open]");
        if (opener) opener.focus({ preventScroll: true });
        if (event.oldIndex === event.newIndex) return;
        renumber(form);
        changed(form);
        announceOrder(form, card);
        var open = form.querySelector(".input-detail.is-open");
        if (open) place(open);
      },
    });
  }

  function initForm(form) {
    if (form.dataset.ready) {
      cards(form).forEach(function (card) { initCard(card, form); });
      return;
    }
    form.dataset.ready = "1";
    form.querySelectorAll("[data-input-cards] > li").forEach(function (card) { initCard(card, form); });
    renumber(form);
    sortable(form);
    var wasOpen = openId && form.querySelector('[data-input="' + openId + '"]');
    if (wasOpen) openCard(wasOpen, false); else openId = null;
    var picker = form.querySelector("input[type=file][name=files]");
    picker.addEventListener("change", function () {
      var files = Array.prototype.slice.call(picker.files);
      picker.value = ""; // staged now; the form itself sends none
      stageAll(form, files);
    });
    // Files dropped anywhere on the form are added (and never opened by the browser).
    var zone = form.querySelector("[data-drop-zone]");
    ["dragenter", "dragover"].forEach(function (name) {
      form.addEventListener(name, function (event) {
        if (!event.dataTransfer || !event.dataTransfer.types.includes("Files")) return;
        event.preventDefault();
        zone.classList.add("drop-active");
      });
    });
    ["dragleave", "drop"].forEach(function (name) {
      form.addEventListener(name, function () { zone.classList.remove("drop-active"); });
    });
    form.addEventListener("drop", function (event) {
      if (!event.dataTransfer || !event.dataTransfer.files.length) return;
      event.preventDefault();
      stageAll(form, event.dataTransfer.files);
    });
  }

  document.addEventListener("paste", function (event) {
    var form = document.getElementById("edit-form");
    if (!form || !event.clipboardData) return;
    var files = Array.prototype.filter.call(event.clipboardData.files, function (f) {
      return /^image\//.test(f.type);
    });
    if (!files.length) return; // text pastes into the prompt as usual
    var target = event.target;
    var typing = target && (target.isContentEditable || /^(TEXTAREA|INPUT)$/.test(target.tagName));
    if (typing && event.clipboardData.types.indexOf("text/plain") >= 0) {
      return; // a spreadsheet's cells come with a picture of them: the text is what was meant
    }
    event.preventDefault();
    stageAll(form, files);
  });

  // On the document, capturing, so it is asked before the form is marked as sending.
  document.addEventListener("submit", holdWhileUploading, true);

  document.addEventListener("DOMContentLoaded", function () {
    function init(root) {
      var form = root.id === "edit-form" ? root : root.querySelector && root.querySelector("#edit-form");
      if (form) initForm(form);
    }
    if (window.htmx) window.htmx.onLoad(init); else init(document);
  });
})();
