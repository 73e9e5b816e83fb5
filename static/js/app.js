// Page behaviour kept out of the HTML, so that the Content-Security-Policy can forbid inline
// scripts: a <select data-autosubmit> submits its form when changed.
document.addEventListener("change", (event) => {
  const select = event.target.closest("select[data-autosubmit]");
  if (select && select.form) select.form.submit();
});
