// memcloud dashboard: small progressive enhancements. Every page works without this file.
(function () {
  "use strict";
  // Ask before destructive buttons (the forms still need their own confirmation fields).
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-confirm]");
    if (button && !window.confirm(button.getAttribute("data-confirm"))) {
      event.preventDefault();
    }
  });
  // Copy buttons next to passwords.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button || !navigator.clipboard) { return; }
    navigator.clipboard.writeText(button.getAttribute("data-copy")).then(function () {
      button.textContent = "Copied";
    });
  });
  // The overview reloads itself now and then, like the hosted dashboard's refresh.
  var refresh = document.querySelector("[data-refresh]");
  if (refresh) {
    var seconds = parseInt(refresh.getAttribute("data-refresh"), 10);
    if (seconds > 0) {
      window.setTimeout(function () {
        if (!document.hidden) { window.location.reload(); }
      }, seconds * 1000);
    }
  }
})();
