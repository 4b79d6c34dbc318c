// The colour palette as a picker: colours added with the browser's colour chooser or as a
// hex code, each shown as a swatch with its share (a slider and a number that move
// together), the total, and the team's palettes used before.
//
// The palette's textarea stays the form's field and what is sent: it is hidden and written
// again as "#RRGGBB share%" lines (a colour without a share as its hex alone) on every
// change, so the server reads what the picker shows, and without this script the form
// works as typed. A share left empty is shown as the server will make it (see
// parse_palette): what the given shares leave, split evenly to the hundredth, rounded down,
// the last empty one taking the remainder.
(function () {
  "use strict";

  // A line as parse_palette reads it; lines are separated by breaks, commas or semicolons.
  var LINE = /^(#[0-9A-Fa-f]{6})(?:\s+([0-9]{1,3}(?:\.[0-9]{1,2})?)\s*%?)?$/;
  var HEX = /^#?([0-9A-Fa-f]{6}|[0-9A-Fa-f]{3})$/;
  // Shares are counted in hundredths of a percent, whole numbers, as the server's decimals
  // count them: no binary fractions to round differently.
  var WHOLE = 10000;
  var SAY_TOTAL_AFTER_MS = 600;
  var rows = 0; // for ids unique on the page

  function hundredths(text) {
    return Math.round(parseFloat(text) * 100);
  }

  // "40", "33.5", "33.34": what the share field shows and the textarea carries.
  function shareText(share) {
    return (share / 100).toFixed(2).replace(/\.?0+$/, "");
  }

  function percent(share) {
    return (share / 100).toFixed(2) + " %";
  }

  function normalHex(text) {
    var match = HEX.exec(text.trim());
    if (!match) return null;
    var digits = match[1];
    if (digits.length === 3) {
      digits = digits.replace(/./g, function (d) { return d + d; });
    }
    return "#" + digits.toUpperCase();
  }

  // The colours in a palette's text, and the lines that could not be read as one.
  function parseText(text) {
    var colours = [];
    var unread = [];
    text.split(/[\n,;]+/).forEach(function (raw) {
      var line = raw.trim();
      if (!line) return;
      var match = LINE.exec(line);
      if (!match) {
        unread.push(line);
        return;
      }
      colours.push({ hex: match[1].toUpperCase(), share: match[2] ? hundredths(match[2]) : null });
    });
    return { colours: colours, unread: unread };
  }

  function writeText(colours) {
    return colours.map(function (colour) {
      return colour.share === null ? colour.hex : colour.hex + " " + shareText(colour.share) + "%";
    }).join("\n");
  }

  // Each colour's share as the server will send it: the given ones as they are, the empty
  // ones an even part of what is left (null when nothing is left for them).
  function split(colours) {
    var given = 0;
    var empty = [];
    colours.forEach(function (colour, i) {
      if (colour.share === null) empty.push(i); else given += colour.share;
    });
    var shares = colours.map(function (colour) { return colour.share; });
    var left = WHOLE - given;
    if (empty.length && left > 0) {
      var each = Math.floor(left / empty.length);
      empty.forEach(function (i) { shares[i] = each; });
      shares[empty[empty.length - 1]] = each + left - each * empty.length;
    }
    var total = shares.reduce(function (sum, share) { return sum + (share || 0); }, 0);
    return { shares: shares, given: given, empty: empty.length, total: total };
  }

  function plural(n, one, many) {
    return n + " " + (n === 1 ? one : many);
  }

  // What is wrong with the palette as it stands, in the words shown beside it; "" if nothing.
  function problem(colours, parts, low, high) {
    var n = colours.length;
    if (n === 0) return "";
    if (n < low) {
      return "A palette needs at least " + low + " colours: add " + (low - n) +
        " more, or remove " + (n === 1 ? "this one" : "these") + " to send no palette.";
    }
    if (n > high) {
      return "A palette holds at most " + high + " colours: remove " + (n - high) + ".";
    }
    if (parts.empty && parts.given > WHOLE) {
      return "The shares given add up to " + percent(parts.given) + ", over 100 %: lower one.";
    }
    if (parts.empty && parts.given === WHOLE) {
      return "The shares given already make 100 %, which leaves nothing for the " +
        plural(parts.empty, "colour", "colours") + " without one: lower a share.";
    }
    if (!parts.empty && parts.total > WHOLE) {
      return "The shares add up to " + percent(parts.total) + ", over 100 %: lower one.";
    }
    if (!parts.empty && parts.total < WHOLE) {
      return "The shares add up to " + percent(parts.total) + ", not 100 %: raise one, " +
        "or empty one to take the rest.";
    }
    return "";
  }

  // -- One palette ---------------------------------------------------------------------------

  function Picker(root) {
    this.root = root;
    this.field = root.querySelector("textarea");
    this.picker = root.querySelector("[data-palette-picker]");
    this.list = root.querySelector("[data-palette-list]");
    this.pick = root.querySelector("[data-palette-pick]");
    this.hex = root.querySelector("[data-palette-hex]");
    this.add = root.querySelector("[data-palette-add]");
    this.addWhy = root.querySelector("[data-palette-add-why]");
    this.total = root.querySelector("[data-palette-total]");
    this.message = root.querySelector("[data-palette-message]");
    this.said = root.querySelector("[data-palette-said]");
    this.low = parseInt(root.dataset.minColours, 10) || 3;
    this.high = parseInt(root.dataset.maxColours, 10) || 10;
    this.sayTimer = null;
    // Read from the textarea every time the form is drawn: it is what the server sent back,
    // a palette to fix included.
    var read = parseText(this.field.value);
    this.colours = read.colours;
    this.show();
    this.bind();
    this.render();
    if (read.unread.length) {
      // What is sent is what is shown: lines the picker cannot show are left out now.
      this.write();
      this.message.textContent = "Left out what is not a #RRGGBB colour: “" +
        read.unread.join("”, “") + "”.";
      this.message.classList.add("palette-problem");
    }
  }

  Picker.prototype.show = function () {
    this.field.hidden = true;
    this.picker.hidden = false;
    // The field's label, help and errors name and describe the picker in its place.
    var fieldLabel = document.querySelector("label[for='" + this.field.id + "']");
    if (fieldLabel) {
      fieldLabel.id = fieldLabel.id || this.field.id + "_label";
      this.picker.setAttribute("aria-labelledby", fieldLabel.id);
    }
    var described = (this.field.getAttribute("aria-describedby") || "").split(" ");
    var errors = document.getElementById(this.field.id + "_error");
    if (errors) described.push(errors.id);
    described.push(this.message.id);
    this.picker.setAttribute("aria-describedby", described.filter(Boolean).join(" "));
  };

  Picker.prototype.bind = function () {
    var self = this;
    this.pick.addEventListener("input", function () {
      self.hex.value = self.pick.value.toUpperCase();
      self.hex.removeAttribute("aria-invalid");
    });
    this.hex.addEventListener("input", function () {
      var hex = normalHex(self.hex.value);
      if (hex) self.pick.value = hex.toLowerCase();
      self.hex.removeAttribute("aria-invalid");
    });
    this.hex.addEventListener("keydown", function (event) {
      if (event.key !== "Enter") return;
      event.preventDefault(); // Enter adds the colour; it does not send the form
      self.addColour();
    });
    this.add.addEventListener("click", function () { self.addColour(); });
    this.root.querySelectorAll("[data-palette-use]").forEach(function (offer) {
      offer.addEventListener("click", function () {
        self.colours = parseText(offer.dataset.paletteUse).colours;
        self.changed(true);
        self.say("Palette used before put in: " + plural(self.colours.length, "colour", "colours") +
          ", total " + self.total.textContent + ".");
      });
    });
  };

  Picker.prototype.addColour = function () {
    if (this.colours.length >= this.high) return;
    var typed = this.hex.value.trim();
    var hex = typed ? normalHex(typed) : this.pick.value.toUpperCase();
    if (!hex) {
      this.hex.setAttribute("aria-invalid", "true");
      this.message.textContent = "Write the colour to add as #RRGGBB, e.g. #1F6FEB.";
      this.message.classList.add("palette-problem");
      this.hex.focus();
      return;
    }
    this.colours.push({ hex: hex, share: null });
    this.hex.value = "";
    this.changed(true);
    this.say(hex + " added: " + plural(this.colours.length, "colour", "colours") + ".");
  };

  Picker.prototype.removeColour = function (index) {
    var hex = this.colours[index].hex;
    this.colours.splice(index, 1);
    this.changed(true);
    // The keyboard stays in the list: on the colour that took this one's place, or the last.
    var buttons = this.list.querySelectorAll("[data-palette-remove]");
    var next = buttons[Math.min(index, buttons.length - 1)];
    (next || this.hex).focus();
    this.say(hex + " removed: " + plural(this.colours.length, "colour", "colours") + ".");
  };

  // A change made in the picker: shown, and written to the field that is sent.
  Picker.prototype.changed = function (redraw) {
    if (redraw) this.render(); else this.update();
    this.write();
  };

  Picker.prototype.write = function () {
    this.field.value = writeText(this.colours);
  };

  Picker.prototype.say = function (text) {
    clearTimeout(this.sayTimer);
    this.said.textContent = text;
  };

  Picker.prototype.sayTotalSoon = function () {
    var self = this;
    clearTimeout(this.sayTimer);
    this.sayTimer = setTimeout(function () {
      self.said.textContent = "Total " + self.total.textContent + ".";
    }, SAY_TOTAL_AFTER_MS);
  };

  Picker.prototype.render = function () {
    var self = this;
    this.list.textContent = "";
    this.colours.forEach(function (colour, index) {
      self.list.appendChild(self.row(colour, index));
    });
    this.list.hidden = !this.colours.length;
    this.update();
  };

  Picker.prototype.row = function (colour, index) {
    var id = "palette-colour-" + (++rows);
    var item = element("li", "palette-colour");
    item.dataset.paletteColour = colour.hex;
    var swatch = element("span", "palette-swatch");
    swatch.setAttribute("aria-hidden", "true");
    swatch.style.backgroundColor = colour.hex;
    var slider = control("range", id + "-slider");
    slider.step = "1";
    var number = control("number", id + "-share");
    number.step = "any"; // a hundredth is as fine as a share goes; finer is rounded
    number.inputMode = "decimal";
    number.value = colour.share === null ? "" : shareText(colour.share);
    var hint = element("span", "visually-hidden");
    hint.id = id + "-hint";
    number.setAttribute("aria-describedby", hint.id);
    var unit = element("span", "palette-unit", "%");
    unit.setAttribute("aria-hidden", "true");
    var share = element("span", "palette-share");
    share.append(number, unit);
    var remove = element("button", "icon-button palette-remove", "✕");
    remove.type = "button";
    remove.dataset.paletteRemove = "";
    remove.setAttribute("aria-label", "Remove " + colour.hex);
    remove.title = "Remove " + colour.hex;
    item.append(
      swatch, element("span", "palette-hex", colour.hex),
      label(slider, "Share of " + colour.hex), slider,
      label(number, "Share of " + colour.hex + " in percent"), share, hint, remove
    );
    item.parts = { slider: slider, number: number, hint: hint };
    this.bindRow(colour, index, item.parts, remove);
    return item;
  };

  Picker.prototype.bindRow = function (colour, index, parts, remove) {
    var self = this;
    var slider = parts.slider;
    var number = parts.number;
    slider.addEventListener("input", function () {
      colour.share = parseInt(slider.value, 10) * 100;
      number.value = shareText(colour.share);
      self.changed(false);
      self.sayTotalSoon();
    });
    number.addEventListener("input", function () {
      if (number.validity.badInput) return; // half a number typed ("1e"): wait for the rest
      if (number.value === "") {
        colour.share = null;
      } else {
        var typed = hundredths(number.value);
        colour.share = Math.min(WHOLE, Math.max(0, typed));
        // Out of 0–100 the browser would refuse to send the form: kept within at once.
        if (colour.share !== typed) number.value = shareText(colour.share);
      }
      self.changed(false);
      self.sayTotalSoon();
    });
    number.addEventListener("change", function () {
      // Shown as it is sent, to the hundredth.
      if (colour.share !== null) number.value = shareText(colour.share);
    });
    remove.addEventListener("click", function () { self.removeColour(index); });
  };

  // Everything that follows from the shares: the empty ones' parts, the total, what is
  // wrong, whether another colour fits.
  Picker.prototype.update = function () {
    var parts = split(this.colours);
    var items = this.list.children;
    for (var i = 0; i < items.length; i++) {
      this.showShare(items[i], this.colours[i], parts.shares[i]);
    }
    var none = !this.colours.length;
    this.total.textContent = percent(parts.total);
    this.total.parentElement.hidden = none;
    this.total.parentElement.classList.toggle("palette-off", parts.total !== WHOLE);
    var wrong = problem(this.colours, parts, this.low, this.high);
    // No palette is a choice too: the field is optional.
    this.message.textContent = none ? "No palette: the model chooses the colours." : wrong;
    this.message.classList.toggle("palette-problem", !!wrong);
    this.picker.dataset.paletteState = wrong ? "wrong" : "right";
    this.updateAdd();
  };

  Picker.prototype.showShare = function (item, colour, share) {
    var slider = item.parts.slider;
    var number = item.parts.number;
    var hint = item.parts.hint;
    var empty = colour.share === null;
    item.classList.toggle("palette-auto", empty);
    if (empty) {
      var text = share === null ? "" : shareText(share);
      number.placeholder = text || "0";
      number.dataset.computed = text;
      slider.value = share === null ? "0" : String(Math.round(share / 100));
      slider.setAttribute("aria-valuetext", share === null ?
        "none left" : percent(share) + ", an even part of what is left");
      hint.textContent = share === null ? "Left empty: nothing is left for it." :
        "Left empty: gets " + percent(share) + ", an even part of what is left.";
    } else {
      number.placeholder = "";
      delete number.dataset.computed;
      slider.value = String(Math.round(colour.share / 100));
      slider.setAttribute("aria-valuetext", percent(colour.share));
      hint.textContent = "";
    }
  };

  Picker.prototype.updateAdd = function () {
    var full = this.colours.length >= this.high;
    if (full && document.activeElement === this.add) this.hex.focus(); // not lost to the page
    this.add.disabled = full;
    this.addWhy.textContent = full ? this.high + " colours: the most a palette holds. " +
      "Remove one to add another." : "";
    this.addWhy.hidden = !full;
  };

  function element(tag, className, text) {
    var el = document.createElement(tag);
    el.className = className;
    if (text) el.textContent = text;
    return el;
  }

  function control(type, id) {
    var el = document.createElement("input");
    el.type = type;
    el.id = id;
    el.min = "0";
    el.max = "100";
    return el;
  }

  function label(target, text) {
    var el = element("label", "visually-hidden", text);
    el.htmlFor = target.id;
    return el;
  }

  function init(root) {
    var found = root.matches && root.matches("[data-palette]") ? [root] :
      root.querySelectorAll("[data-palette]");
    found.forEach(function (palette) {
      // Kept on the element, not in its attributes: a page restored from history by htmx
      // comes back as markup, with the picker drawn but nothing listening.
      if (palette.paletteReady) return;
      palette.paletteReady = true;
      new Picker(palette);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (window.htmx) {
      window.htmx.onLoad(init); // the first page and every form htmx draws again
    } else {
      init(document);
    }
  });
})();
