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
// Copy buttons next to one-time secrets (data-copy-target names the field): the Clipboard API,
// else the browser's copy command on the selected text, else the text is left selected for
// Ctrl+C. The outcome is said in the field's live region (data-copy-status).
document.querySelectorAll("button[data-copy-target]").forEach((button) => {
  button.hidden = false;
});
document.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-copy-target]");
  if (!button) return;
  const id = button.dataset.copyTarget;
  const field = document.getElementById(id);
  const status = document.querySelector(`[data-copy-status="${CSS.escape(id)}"]`);
  if (!field) return;
  const say = (text) => {
    if (!status) return;
    status.textContent = "";
    // A fresh text node each time, so a second "Copied" is announced again.
    window.setTimeout(() => { status.textContent = text; }, 50);
  };
  let copied = false;
  if (navigator.clipboard && window.isSecureContext) {
    try {
      await navigator.clipboard.writeText(field.value);
      copied = true;
    } catch (error) {
      copied = false;
    }
  }
  if (!copied) {
    field.focus();
    field.select();
    try {
      copied = document.execCommand("copy");
    } catch (error) {
      copied = false;
    }
  }
  if (copied) {
    button.classList.add("copied");
    say(gettext("Copied"));
  } else {
    field.focus();
    field.select();
    say(gettext("Selected: press Ctrl+C (⌘C on a Mac) to copy."));
  }
});
// Tables scroll sideways inside their own box on a narrow screen: the templates wrap each in a
// focusable region named after it. A table whose template does not wrap it yet gets the same
// wrapper here, named by the heading it follows.
document.querySelectorAll("table.table").forEach((table, index) => {
  if (table.parentElement.classList.contains("table-wrap")) return;
  const wrap = document.createElement("div");
  wrap.className = "table-wrap";
  wrap.setAttribute("role", "region");
  wrap.tabIndex = 0;
  let heading = null;
  for (let node = table; node && !heading && node !== document.body; node = node.parentElement) {
    for (let before = node.previousElementSibling; before && !heading; before = before.previousElementSibling) {
      heading = before.matches("h1, h2, h3") ? before : before.querySelector("h1, h2, h3");
    }
  }
  if (heading) {
    heading.id = heading.id || `table-heading-${index}`;
    wrap.setAttribute("aria-labelledby", heading.id);
  }
  table.before(wrap);
  wrap.append(table);
});
// Escape closes the menu (or the organization list) that has the focus, and puts the focus
// back on its button.
document.addEventListener("keydown", (event) => {
  if (event.key !== "Escape") return;
  const open = document.activeElement && document.activeElement.closest("details.menu[open], details.switcher[open]");
  if (!open) return;
  open.open = false;
  open.querySelector("summary").focus();
});
// A wide screen shows the menu's content even while it is closed (app.css); opening it there
// tells assistive technology the same. A phone starts with it closed.
(() => {
  const menu = document.querySelector("details.menu");
  if (!menu || !window.matchMedia) return;
  const wide = window.matchMedia("(min-width: 56.01rem)");
  const follow = () => { menu.open = wide.matches; };
  follow();
  wide.addEventListener("change", follow);
})();
