// Boards as drop targets: an image dragged from the grid onto a board in the sidebar is added
// to it, with the rest of the selection if that image is ticked. The list comes back with the
// new counts, and the sidebar's status says what was added. Without a mouse, the selection
// bar's "Add to board".
(function () {
  "use strict";
  var TYPE = "application/x-studio-images";

  // As the selection bar sends them: [field, value] pairs, a set's card as the set.
  function dragged(card) {
    var tick = card.querySelector(".card-select");
    if (tick && tick.checked) {
      return Array.prototype.map.call(document.querySelectorAll(".card-select:checked"), function (box) {
        return [box.name, box.value];
      });
    }
    return card.dataset.set ? [["set", card.dataset.set]] : [["image", card.dataset.image]];
  }

  function csrfToken() {
    try {
      return JSON.parse(document.body.getAttribute("hx-headers"))["x-csrftoken"];
    } catch (error) {
      return "";
    }
  }

  // The same live region throughout: a region put on the page with its text already in it
  // is often not read out at all.
  function said(text) {
    var status = document.querySelector("[data-board-status]");
    if (!status) return;
    status.textContent = text;
    status.classList.remove("visually-hidden");
  }

  function currentBoard() {
    var list = document.getElementById("board-list");
    return (list && list.dataset.currentBoard) || "";
  }

  document.addEventListener("dragstart", function (event) {
    var card = event.target.closest && event.target.closest(".gallery-card");
    if (!card || !document.querySelector("[data-board-drop]")) return;
    var ids = dragged(card);
    event.dataTransfer.setData(TYPE, JSON.stringify(ids));
    event.dataTransfer.effectAllowed = "copy";
    document.documentElement.classList.add("dragging-images");
  });

  document.addEventListener("dragend", function () {
    document.documentElement.classList.remove("dragging-images");
    document.querySelectorAll(".board-entry.is-over").forEach(function (el) { el.classList.remove("is-over"); });
  });

  document.addEventListener("dragover", function (event) {
    var board = event.target.closest && event.target.closest("[data-board-drop]");
    if (!board || event.dataTransfer.types.indexOf(TYPE) < 0) return;
    event.preventDefault(); // this is a place the images may be dropped
    event.dataTransfer.dropEffect = "copy";
    board.classList.add("is-over");
  });

  document.addEventListener("dragleave", function (event) {
    var board = event.target.closest && event.target.closest("[data-board-drop]");
    if (board && !board.contains(event.relatedTarget)) board.classList.remove("is-over");
  });

  document.addEventListener("drop", function (event) {
    var board = event.target.closest && event.target.closest("[data-board-drop]");
    if (!board) return;
    var text = event.dataTransfer.getData(TYPE);
    if (!text) return;
    event.preventDefault();
    var body = new FormData();
    JSON.parse(text).forEach(function (pair) { body.append(pair[0], pair[1]); });
    body.append("current_board", currentBoard());
    said("Adding to " + board.dataset.boardName + "…");
    fetch(board.dataset.boardDrop, {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken(), "HX-Request": "true" },
    })
      .then(function (response) {
        if (!response.ok) throw new Error(String(response.status));
        return response.text();
      })
      .then(function (html) {
        // The answer is the whole sidebar; only its list (the new counts) is taken from it.
        var answer = document.createElement("div");
        answer.innerHTML = html;
        var fresh = answer.querySelector("#board-list");
        var list = document.getElementById("board-list");
        if (list && fresh) {
          list.replaceWith(fresh);
          if (window.htmx) window.htmx.process(fresh);
        }
        var reply = answer.querySelector("[data-board-status]");
        said(reply ? reply.textContent.trim() : "");
      })
      .catch(function () {
        said("Those images could not be added to " + board.dataset.boardName + "; try again.");
      });
  });

  // The grid's filters change the address without a reload: a board made in the sidebar
  // comes back to what is shown now.
  document.addEventListener("submit", function (event) {
    var next = event.target.querySelector && event.target.querySelector("[data-board-next]");
    if (next) next.value = location.pathname + location.search;
  });

  function ready() {
    document.querySelectorAll("#boards-sidebar [data-js-only]").forEach(function (el) { el.hidden = false; });
  }
  document.addEventListener("DOMContentLoaded", ready);
})();
