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
