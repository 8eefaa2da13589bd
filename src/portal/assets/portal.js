// ssprd portal: small enhancements only; every page works without this script.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  // Kiosk: back to the start (the session discarded) after the timeout without input.
  // Without JavaScript a <noscript> refresh does the same, counted from the page load.
  var timeout = Number(document.body.dataset.kioskTimeout || 0);
  if (timeout > 0) {
    var timer;
    var arm = function () {
      clearTimeout(timer);
      timer = setTimeout(function () { window.location.assign("/restart"); }, timeout * 1000);
    };
    ["keydown", "pointerdown", "input", "touchstart"].forEach(function (e) {
      document.addEventListener(e, arm, { passive: true });
    });
    arm();
  }
  // Move the focus to the error summary, so screen readers announce it first.
  var summary = document.getElementById("error-summary");
  if (summary) { summary.focus(); }
  // Say at once when the two new passwords differ.
  var pw = document.getElementById("new_password");
  var again = document.getElementById("confirm_password");
  if (pw && again) {
    var check = function () {
      again.setCustomValidity(again.value && again.value !== pw.value ? again.dataset.mismatch || " " : "");
    };
    pw.addEventListener("input", check);
    again.addEventListener("input", check);
  }
  // Mark the length rule as met while the new password is typed.
  var length = document.querySelector("[data-min-length]");
  if (pw && length) {
    var min = Number(length.dataset.minLength);
    pw.addEventListener("input", function () {
      length.classList.toggle("met", pw.value.length >= min);
    });
  }
});
