// Small conveniences on the generation forms. Everything here is an addition: the forms
// submit and the server checks every limit without it.
(function () {
  "use strict";

  function countChars(field) {
    // The provider counts characters as code points, not UTF-16 units; a line break is
    // one character, as the form sends it.
    return Array.from(field.value.replace(/\r\n/g, "\n")).length;
  }

  // Tokens are counted by the server, with the provider's tokenizer: the counter shows
  // what the check on sending will count. The last answer stands until the next arrives.
  function tokenCounter(field, show) {
    var timer = null;
    var asked = 0;
    return function () {
      clearTimeout(timer);
      timer = setTimeout(function () {
        var form = field.closest("form");
        var body = new FormData();
        body.append("text", field.value);
        var model = form.querySelector("input[name=model]:checked, select[name=model]");
        body.append("model", model ? model.value : "");
        var token = form.querySelector("[name=csrfmiddlewaretoken]");
        var mine = ++asked;
        fetch(field.dataset.countUrl, {
          method: "POST",
          body: body,
          headers: token ? {"X-CSRFToken": token.value} : {},
          credentials: "same-origin"
        }).then(function (answer) {
          return answer.ok ? answer.json() : null;
        }).then(function (data) {
          if (data && mine === asked) show(data.count);
        }).catch(function () { /* the check on sending still counts */ });
      }, 250);
    };
  }

  function initCounter(field) {
    if (field.dataset.counterReady) return;
    field.dataset.counterReady = "1";
    var max = parseInt(field.dataset.max, 10);
    var unit = field.dataset.unit || "characters";
    var counter = document.createElement("small");
    counter.className = "counter";
    // Read out only when the state changes (near the limit, over it, back within it), not
    // on every key: a live count interrupts the typing it counts.
    var announce = document.createElement("span");
    announce.className = "visually-hidden";
    announce.setAttribute("aria-live", "polite");
    field.insertAdjacentElement("afterend", counter);
    counter.insertAdjacentElement("afterend", announce);
    var state = "within";
    var label = field.closest(".field") && field.closest(".field").querySelector("label");
    var name = label ? label.textContent.trim() : "The text";
    function units(n) {  // "1 token", "2 tokens"
      return n.toLocaleString() + " " + (n === 1 ? unit.replace(/s$/, "") : unit);
    }
    function show(used) {
      counter.textContent = used.toLocaleString() + " / " + max.toLocaleString() +
        (unit === "tokens" ? " tokens" : "");
      counter.dataset.count = used;
      var now = used > max ? "over" : used > max * 0.9 ? "near" : "within";
      counter.classList.toggle("counter-near", now === "near");
      counter.classList.toggle("counter-over", now === "over");
      if (now === "over") {
        field.dataset.overLimit = name + " is " + units(used - max) + " over its limit of " +
          max.toLocaleString() + ".";
      } else {
        delete field.dataset.overLimit;
      }
      updateSubmit(field.closest("form"));
      if (now !== state) {
        announce.textContent = now === "over" ? units(used - max) + " over the limit of " +
          max.toLocaleString() + "." : now === "near" ?
          units(max - used) + " left." : "Within the limit.";
        state = now;
      }
    }
    var update = unit === "tokens" && field.dataset.countUrl ?
      tokenCounter(field, show) : function () { show(countChars(field)); };
    field.addEventListener("input", update);
    update();
  }

  // The form's sending button is disabled while a counted field is over its limit, and says
  // why beside it: the server would refuse the same text with the same count.
  function updateSubmit(form) {
    if (!form) return;
    var buttons = form.querySelectorAll("button[type=submit].primary:not([name])");
    if (!buttons.length) return;
    var reasons = [];
    form.querySelectorAll("[data-over-limit]").forEach(function (field) {
      reasons.push(field.dataset.overLimit);
    });
    buttons.forEach(function (button) {
      var why = button.parentElement.querySelector("[data-submit-why]");
      if (!why) {
        why = document.createElement("p");
        why.className = "submit-why";
        why.id = "submit-why-" + Math.random().toString(36).slice(2);
        why.setAttribute("data-submit-why", "");
        why.setAttribute("aria-live", "polite");
        button.insertAdjacentElement("afterend", why);
      }
      why.textContent = reasons.join(" ");
      why.hidden = !reasons.length;
      button.disabled = reasons.length > 0;
      if (reasons.length) {
        button.setAttribute("aria-describedby", why.id);
      } else {
        button.removeAttribute("aria-describedby");
      }
    });
  }

  function initCost(form) {
    // The number asked for: n, or for a piece of text and images the most pictures.
    var n = form.querySelector("[name=n], [name=max_images]");
    var shown = form.querySelector("[data-cost-images]");
    if (!n || !shown) return;
    function update() {
      var wanted = parseInt(n.value, 10) || 1;
      shown.textContent = wanted + (wanted === 1 ? " image" : " images");
      var money = form.querySelector("[data-cost-money]");
      if (money) {
        // As the page writes it: at least cents, and a price's fractions of a cent.
        var amount = (wanted * parseFloat(money.dataset.price)).toFixed(4).replace(/0{1,2}$/, "");
        money.textContent = amount + " " + money.dataset.currency;
      }
      form.querySelectorAll("[data-left]").forEach(function (line) {
        line.classList.toggle("over-quota", wanted > parseInt(line.dataset.left, 10));
      });
    }
    n.addEventListener("change", update);
    update();
  }

  function initSizeCheck(input) {
    var out = input.closest(".field").querySelector("[data-size-check]");
    if (!out || input.dataset.sizeReady) return;
    input.dataset.sizeReady = "1";
    var form = input.closest("form");
    function check() {
      var text = input.value.trim().toLowerCase().replace(/\s+/g, "").replace(/[×x]/g, "*");
      out.textContent = "";
      out.classList.remove("live-bad", "live-good");
      // The server's word on the size as sent stands until it is changed: the same
      // problem said twice, in other words, reads as two.
      if (!text || (input.closest(".has-error") && !input.dataset.edited)) return;
      var match = /^([1-9][0-9]{1,4})\*([1-9][0-9]{1,4})$/.exec(text);
      var message;
      var good = false;
      if (!match) {
        message = "Write the size as width×height, e.g. 1600×900.";
      } else {
        var w = parseInt(match[1], 10);
        var h = parseInt(match[2], 10);
        var editing = form && form.classList.contains("edit-form");
        var low = parseInt(input.dataset.minPixels, 10);
        var high = parseInt(editing ? input.dataset.maxPixelsEdit : input.dataset.maxPixels, 10);
        var sideLow = parseInt(input.dataset.minSide || "0", 10);
        var sideHigh = parseInt(input.dataset.maxSide || "0", 10);
        var aLow = parseInt(input.dataset.aspectLow || "0", 10);
        var aHigh = parseInt(input.dataset.aspectHigh || "0", 10);
        if (w * h < low || w * h > high) {
          // In the server's words: a refusal after sending reads the same.
          var range = editing ? input.dataset.pixelsRangeEdit : input.dataset.pixelsRange;
          message = w + "×" + h + " is " + (w * h).toLocaleString() + " pixels; " +
            (input.dataset.modelLabel || "this model") + " makes " +
            (range || "between " + low.toLocaleString() + " and " + high.toLocaleString() + " pixels") +
            " in total.";
        } else if (sideHigh && (Math.max(w, h) > sideHigh || Math.min(w, h) < sideLow)) {
          message = w + "×" + h + ": each side must be between " + sideLow.toLocaleString() +
            " and " + sideHigh.toLocaleString() + " pixels.";
        } else if (aLow && (w * aHigh < h * aLow || w * aLow > h * aHigh)) {
          message = w + "×" + h + ": the aspect ratio must be between " + aLow + ":" + aHigh +
            " and " + aHigh + ":" + aLow + ".";
        } else {
          message = w + "×" + h + " works with this model.";
          good = true;
        }
      }
      out.textContent = message;
      out.classList.add(good ? "live-good" : "live-bad");
    }
    input.addEventListener("input", function () {
      input.dataset.edited = "1";
      check();
    });
    check();
  }

  // A form marked data-submit-once is sent once: a second press while the first is on its
  // way (the page looks stuck on a slow connection) would make and charge a second job.
  // Buttons with a name of their own (moving or removing an image without scripts) are
  // not the form's sending and pass.
  function release(form) {
    delete form.dataset.sending;
    form.removeAttribute("aria-busy");
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (event.defaultPrevented || !form.hasAttribute || !form.hasAttribute("data-submit-once")) return;
    if (event.submitter && event.submitter.name) return;
    if (form.dataset.sending) {
      event.preventDefault();
      return;
    }
    form.dataset.sending = "1";
    form.setAttribute("aria-busy", "true");
    // Should the answer never come (the person pressed Stop), the form works again.
    setTimeout(function () { release(form); }, 15000);
  });

  var PROBLEMS = ".error, .field-error:not([hidden]), .has-error";

  function lessMotion() {
    return window.matchMedia("(prefers-reduced-motion: reduce)").matches;
  }

  // A problem is brought to the middle of its scrolling (the sidebar, or the page on a
  // narrow screen), clear of the submit bar stuck to their foot, and a field in error
  // takes the focus, so that it is also what a screen reader reads next.
  function bringToFix(problem) {
    var field = problem.closest(".field");
    var target = field || problem;
    target.scrollIntoView({ block: "center" });
    var control = field && field.querySelector("input:not([type=hidden]), textarea, select");
    if (control) {
      control.focus({ preventScroll: true });
    } else if (problem.matches(".error")) {
      problem.setAttribute("tabindex", "-1");
      problem.focus({ preventScroll: true });
    }
  }

  // Each thing to fix in a few words, beside the button: the errors themselves may lie out
  // of sight in the form, and the button is where the designer looked after pressing it.
  function problemsOf(form) {
    var found = [];
    form.querySelectorAll(".field.has-error, .input-card.has-error, .error").forEach(function (el) {
      if (el.matches(".input-card")) {
        var number = el.querySelector("[data-position]");
        found.push({ el: el, name: "Image " + (number ? number.textContent.trim() : ""),
          text: (el.querySelector(".badge-problem") || {}).title || "" });
        return;
      }
      var message = el.querySelector(".field-error");
      var label = el.querySelector("legend, label"); // a group's legend names it, not its first box
      found.push({
        el: el,
        name: label ? label.textContent.trim() : "",
        text: (message || el).textContent.trim()
      });
    });
    return found;
  }

  function showProblems(form) {
    var bar = form.querySelector(".submit-bar");
    if (!bar) return;
    var old = bar.querySelector("[data-submit-problems]");
    if (old) old.remove();
    var found = problemsOf(form);
    if (!found.length) return;
    var line = document.createElement("p");
    line.className = "submit-problems";
    line.setAttribute("data-submit-problems", "");
    line.appendChild(document.createTextNode(found.length +
      (found.length === 1 ? " thing to fix: " : " things to fix: ")));
    found.forEach(function (problem, i) {
      if (i) line.appendChild(document.createTextNode("; "));
      var link = document.createElement("a");
      var control = problem.el.querySelector("input:not([type=hidden]), textarea, select");
      link.href = "#" + (control && control.id ? control.id : problem.el.id || "");
      link.textContent = problem.name || "The form";
      link.addEventListener("click", function (event) {
        event.preventDefault();
        bringToFix(problem.el.querySelector(".field-error") || problem.el);
      });
      line.appendChild(link);
      if (problem.text) line.appendChild(document.createTextNode(" — " + problem.text));
    });
    bar.insertBefore(line, bar.firstChild);
  }

  // A form sent back with something to fix is drawn again where it was scrolled to: the
  // first thing to fix is brought into view (the sidebar's scrolling is kept across the
  // redraw, so it may be out of sight). A model switch redraws it too, and is left alone.
  // A form sent and taken, on a narrow screen where the results lie far below the form, has
  // the new job brought into view: nothing else would show that anything happened there.
  // On a wide screen the results are in sight beside the form and nothing moves.
  // A form redrawn in place (a set or a piece switched on or off) stays where it was on
  // the page: without this, the browser keeps the results below in place as the old form
  // goes and the new one comes, which throws a phone's page down to them.
  var scrolledTo = null;
  document.addEventListener("htmx:beforeSwap", function (event) {
    var form = event.detail && event.detail.target;
    scrolledTo = form && form.tagName === "FORM" ? window.scrollY : null;
  });
  document.addEventListener("htmx:afterSwap", function (event) {
    var elt = event.detail && event.detail.requestConfig && event.detail.requestConfig.elt;
    if (scrolledTo !== null && elt && elt.tagName !== "FORM" && window.scrollY !== scrolledTo) {
      window.scrollTo({ top: scrolledTo, behavior: "auto" });
    }
    scrolledTo = null;
  });

  document.addEventListener("htmx:afterSwap", function (event) {
    var sent = event.detail && event.detail.requestConfig && event.detail.requestConfig.elt;
    var form = event.detail && event.detail.target;
    if (!sent || sent.tagName !== "FORM" || !form || !form.id) return;
    form = document.getElementById(form.id); // the form drawn in place of the one sent
    if (!form) return;
    var problem = form.querySelector(PROBLEMS);
    if (problem) {
      bringToFix(problem);
      return;
    }
    var job = form.dataset.sentJob;
    if (!job || window.matchMedia("(min-width: 1180px)").matches) return;
    // After the results sent with the form are in place.
    requestAnimationFrame(function () {
      var entry = document.querySelector('#recent-jobs .result-entry[data-job="' + job + '"]') ||
        document.querySelector("#recent-jobs .result-entry");
      if (entry) entry.scrollIntoView({ block: "start", behavior: lessMotion() ? "auto" : "smooth" });
    });
  });

  // The prompts are kept in this tab as they are typed, one draft per page, so a reload
  // (or a crash) does not lose them. A value the page comes with wins: it is the form as
  // the server last had it.
  var DRAFTED = "textarea[name=prompt], textarea[name=negative_prompt], input[name=negative_prompt]";

  function draftKey(field) {
    return "studio-draft:" + window.location.pathname + ":" + field.name;
  }

  // `drawn`: the form was drawn again by the studio (another model, a kit applied or
  // dropped), and what it holds now is the draft. A field marked data-draft-wins holds a
  // value the page fills in for want of the draft (a kit's prompt, on a reload).
  function initDraft(field, drawn) {
    if (field.dataset.draftReady) return;
    field.dataset.draftReady = "1";
    var key = draftKey(field);
    try {
      var kept = window.sessionStorage.getItem(key);
      if (kept && (!field.value || field.hasAttribute("data-draft-wins"))) {
        field.value = kept;
      } else if (drawn && field.value) {
        window.sessionStorage.setItem(key, field.value);
      } else if (drawn) {
        window.sessionStorage.removeItem(key);
      }
    } catch (error) { /* storage refused (private mode): no drafts, nothing else lost */ }
    field.addEventListener("input", function () {
      try {
        if (field.value) {
          window.sessionStorage.setItem(key, field.value);
        } else {
          window.sessionStorage.removeItem(key);
        }
      } catch (error) { /* as above */ }
    });
  }

  // A size of one's own is the one sent, whatever the list says: the list is greyed with a
  // note while one is written.
  function initSizeChoice(form) {
    var custom = form.querySelector("input[name=custom_size]");
    var select = form.querySelector("select[name=size]");
    if (!custom || !select || custom.dataset.choiceReady) return;
    custom.dataset.choiceReady = "1";
    var field = select.closest(".field") || select.parentElement;
    var note = document.createElement("small");
    note.className = "size-note";
    note.id = select.id + "_overridden";
    note.textContent = "Using your own size below.";
    select.insertAdjacentElement("afterend", note);
    function update() {
      var own = custom.value.trim() !== "";
      field.classList.toggle("size-overridden", own);
      note.hidden = !own;
      var described = (select.getAttribute("aria-describedby") || "").split(" ").filter(function (id) {
        return id && id !== note.id;
      });
      if (own) described.push(note.id);
      if (described.length) {
        select.setAttribute("aria-describedby", described.join(" "));
      } else {
        select.removeAttribute("aria-describedby");
      }
    }
    custom.addEventListener("input", update);
    update();
  }

  // A page restored by Back is live again.
  window.addEventListener("pageshow", function () {
    document.querySelectorAll("form[data-sending]").forEach(release);
  });

  function init(root) {
    root.querySelectorAll("[data-js-only]").forEach(function (el) { el.hidden = false; });
    // Before the counters, which count what the restored draft holds.
    var drawn = root !== document.body && root !== document;
    root.querySelectorAll(DRAFTED).forEach(function (field) { initDraft(field, drawn); });
    root.querySelectorAll("[data-counted]").forEach(initCounter);
    root.querySelectorAll("[data-min-pixels]").forEach(initSizeCheck);
    var forms = root.matches && root.matches("form") ? [root] : root.querySelectorAll("form");
    forms.forEach(initCost);
    forms.forEach(initSizeChoice);
    forms.forEach(function (form) {
      if (form.classList.contains("generate-form")) showProblems(form);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (window.htmx) {
      window.htmx.onLoad(init); // the first page and every piece htmx swaps in
    } else {
      init(document);
    }
  });
})();
