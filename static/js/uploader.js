// New-batch page: files dropped or chosen are uploaded one by one with their own progress bar
// and verdict; accepted files become selected library items, refused ones say why, and the
// others go on. Without JavaScript the form still uploads everything on submit. Words come from
// the page's catalogue (gettext, ngettext, interpolate: /jsi18n/<lang>.js); the verdicts on a
// file from the server, in the page's language.
(() => {
  const form = document.querySelector("form.batch-form");
  if (!form) return;
  const csrf = form.querySelector("input[name=csrfmiddlewaretoken]").value;
  const human = (n) => (n >= 1e6
    ? interpolate(gettext("%(size)s MB"), { size: (n / 1e6).toFixed(1) }, true)
    : interpolate(gettext("%(size)s KB"), { size: Math.max(1, Math.round(n / 1e3)) }, true));
  let pending = 0;
  const submit = form.querySelector("button[type=submit]");
  const submitLabel = submit.textContent;
  const setBusy = () => {
    submit.disabled = pending > 0;
    submit.textContent = pending > 0
      ? interpolate(ngettext("Uploading %(num)s file…", "Uploading %(num)s files…", pending), { num: pending }, true)
      : submitLabel;
  };

  const uploadOne = (zone, file) => {
    const list = zone.querySelector("[data-upload-list]");
    const item = document.createElement("li");
    item.className = "upload";
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = interpolate(gettext("%(name)s (%(size)s)"), { name: file.name, size: human(file.size) }, true);
    const bar = document.createElement("progress");
    bar.max = 100; bar.value = 0;
    bar.setAttribute("aria-label", interpolate(gettext("Upload of %(name)s"), { name: file.name }, true));
    const verdict = document.createElement("span");
    verdict.className = "verdict";
    verdict.textContent = gettext("waiting…");
    item.append(name, bar, verdict);
    list.append(item);

    const data = new FormData();
    data.append("kind", zone.dataset.uploader);
    data.append("file", file, file.name);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", zone.dataset.uploadUrl);
    xhr.setRequestHeader("X-CSRFToken", csrf);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.addEventListener("progress", (e) => {
      if (e.lengthComputable) {
        bar.value = Math.round((e.loaded / e.total) * 100);
        verdict.textContent = bar.value < 100 ? `${bar.value}%` : gettext("checking…");
      }
    });
    const done = () => { pending -= 1; setBusy(); };
    xhr.addEventListener("load", () => {
      let body = {};
      try { body = JSON.parse(xhr.responseText); } catch (err) { body = {}; }
      if (xhr.status === 201) {
        bar.value = 100;
        item.classList.add("ok");
        verdict.textContent = body.verdict || pgettext("upload verdict", "accepted");
        const input = document.createElement("input");
        input.type = "hidden"; input.name = zone.dataset.field; input.value = body.id;
        item.append(input);
      } else {
        item.classList.add("refused");
        const err = body.error;
        verdict.textContent = (err && typeof err === "object" ? err.message : err)
          || interpolate(gettext("refused (HTTP %(status)s)"), { status: xhr.status }, true);
      }
      done();
    });
    xhr.addEventListener("error", () => {
      item.classList.add("refused");
      verdict.textContent = gettext("the upload was interrupted; try this file again");
      done();
    });
    pending += 1; setBusy();
    xhr.send(data);
  };

  form.querySelectorAll("[data-uploader]").forEach((zone) => {
    const input = zone.querySelector("input[type=file]");
    const take = (files) => { Array.from(files).forEach((f) => uploadOne(zone, f)); input.value = ""; };
    input.addEventListener("change", () => take(input.files));
    // Files chosen while this script was still loading (slow connection, quick hands).
    if (input.files.length) take(input.files);
    zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
    zone.addEventListener("dragleave", () => zone.classList.remove("over"));
    zone.addEventListener("drop", (e) => {
      e.preventDefault(); zone.classList.remove("over");
      take(e.dataTransfer.files);
    });
  });
})();
