/* Page behaviour without inline script, so a strict Content-Security-Policy keeps working.
 *  - select[data-autosubmit]: submits its form on change (language menu, roster provider).
 *  - form[data-confirm] / button[data-confirm]: asks before submitting.
 *  - [data-show-when="field=value1,value2"]: shown only while the named field of the same form
 *    has one of the values (fields that do not apply to the chosen type stay hidden).
 *  - .file-picker: shows the chosen file's name beside the page's own "choose a file" button.
 */
(function () {
  "use strict";

  function fieldValue(form, name) {
    var inputs = form.querySelectorAll("[name='" + name + "']");
    for (var i = 0; i < inputs.length; i++) {
      var el = inputs[i];
      if ((el.type === "radio" || el.type === "checkbox") && !el.checked) continue;
      return el.value;
    }
    return "";
  }

  function applyConditions(form) {
    form.querySelectorAll("[data-show-when]").forEach(function (block) {
      var rules = block.getAttribute("data-show-when").split(";");
      var visible = rules.every(function (rule) {
        var parts = rule.split("=");
        var wanted = parts[1].split(",");
        return wanted.indexOf(fieldValue(form, parts[0].trim())) !== -1;
      });
      // Only hidden, still submitted: the server decides what applies and validates it all.
      block.hidden = !visible;
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
      select.addEventListener("change", function () { select.form.submit(); });
    });
    document.querySelectorAll("[data-confirm]").forEach(function (el) {
      var target = el.tagName === "FORM" ? el : el.form;
      target.addEventListener("submit", function (event) {
        if (!window.confirm(el.getAttribute("data-confirm"))) event.preventDefault();
      });
    });
    document.querySelectorAll(".file-picker input[type=file]").forEach(function (input) {
      var name = input.parentNode.querySelector(".file-name");
      input.addEventListener("change", function () {
        name.textContent = input.files.length ? input.files[0].name : name.getAttribute("data-empty");
      });
    });
    document.querySelectorAll("form").forEach(function (form) {
      if (!form.querySelector("[data-show-when]")) return;
      applyConditions(form);
      form.addEventListener("change", function () { applyConditions(form); });
    });
  });
})();
