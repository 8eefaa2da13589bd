// ssprd portal: small enhancements only; every page works without this script.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
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
});
