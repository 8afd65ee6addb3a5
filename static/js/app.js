// Small progressive enhancements; every page works without them.
document.addEventListener("submit", (event) => {
  const form = event.target.closest("form[data-confirm]");
  if (form && !window.confirm(form.dataset.confirm)) event.preventDefault();
});
document.addEventListener("focusin", (event) => {
  if (event.target.matches("input.secret")) event.target.select();
});
// The first login presets the person's time zone from the browser's.
document.querySelectorAll("input[name=browser_time_zone]").forEach((input) => {
  try {
    input.value = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
  } catch (error) {
    input.value = "";
  }
});
// The language switch submits as soon as a language is picked.
document.addEventListener("change", (event) => {
  const select = event.target.closest("form[data-autosubmit] select");
  if (select) select.form.requestSubmit();
});
