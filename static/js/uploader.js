// New-batch and library pages: files dropped or chosen are uploaded one by one with their own
// progress bar and verdict; accepted files become selected library items (the library page
// shows them in its list once every upload is done), files already in the library say so,
// refused ones say why, and the others go on. Without JavaScript the form still uploads
// everything on submit. Words come from
// the page's catalogue (gettext, ngettext, interpolate: /jsi18n/<lang>.js); the verdicts on a
// file from the server, in the page's language.
(() => {
  const form = document.querySelector("form.batch-form, form[data-uploads]");
  if (!form) return;
  const csrf = form.querySelector("input[name=csrfmiddlewaretoken]").value;
  const human = (n) => (n >= 1e6
    ? interpolate(gettext("%(size)s MB"), { size: (n / 1e6).toFixed(1) }, true)
    : interpolate(gettext("%(size)s KB"), { size: Math.max(1, Math.round(n / 1e3)) }, true));
  let pending = 0;
  // The library's own upload button is for pages without this script: files go as chosen.
  form.querySelectorAll("[data-upload-submit]").forEach((button) => { button.hidden = true; });
  const submit = form.querySelector("button[type=submit]:not([data-upload-submit])");
  const submitLabel = submit ? submit.textContent : "";
  // The library page: once every upload is done, its list is fetched again in place.
  const refreshed = form.dataset.refresh && document.querySelector(form.dataset.refresh);
  let accepted = 0;
  let asked = 0;  // only the newest answer is shown: an older, slower one is dropped
  const refresh = () => {
    if (!refreshed || pending > 0 || !accepted) return;
    accepted = 0;
    asked += 1;
    const mine = asked;
    fetch(window.location.href, { headers: { Accept: "text/html" }, cache: "no-store" })
      .then((response) => (response.ok ? response.text() : Promise.reject(response.status)))
      .then((html) => {
        if (mine !== asked) return;
        const fresh = new DOMParser().parseFromString(html, "text/html").querySelector(form.dataset.refresh);
        if (fresh) refreshed.replaceChildren(...fresh.childNodes);
        document.dispatchEvent(new CustomEvent("results:added"));  // the player's order
      })
      .catch(() => { /* the list is as it was; a reload shows the new files */ });
  };
  const setBusy = () => {
    refresh();
    if (!submit) return;
    submit.disabled = pending > 0;
    submit.textContent = pending > 0
      ? interpolate(ngettext("Uploading %(num)s file…", "Uploading %(num)s files…", pending), { num: pending }, true)
      : submitLabel;
  };

  const listItem = (zone, file) => {
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
    return { item, bar, verdict };
  };

  const uploadOne = (zone, file) => new Promise((resolve) => {
    const { item, bar, verdict } = listItem(zone, file);
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
    const done = (asset) => { pending -= 1; setBusy(); countVideos(); resolve(asset); };
    xhr.addEventListener("load", () => {
      let body = {};
      try { body = JSON.parse(xhr.responseText); } catch (err) { body = {}; }
      if (xhr.status === 201 || xhr.status === 200) {  // 200: the same file was already here
        bar.value = 100;
        item.classList.add("ok");
        verdict.textContent = body.verdict || pgettext("upload verdict", "accepted");
        if (zone.dataset.field) {
          const input = document.createElement("input");
          input.type = "hidden"; input.name = zone.dataset.field; input.value = body.id;
          item.append(input);
        }
        accepted += 1;
        done(body);
        return;
      } else {
        item.classList.add("refused");
        const err = body.error;
        verdict.textContent = (err && typeof err === "object" ? err.message : err)
          || interpolate(gettext("refused (HTTP %(status)s)"), { status: xhr.status }, true);
      }
      done(null);
    });
    xhr.addEventListener("error", () => {
      item.classList.add("refused");
      verdict.textContent = gettext("the upload was interrupted; try this file again");
      done(null);
    });
    pending += 1; setBusy();
    xhr.send(data);
  });

  // Subtitles (SRT) chosen with the audio tracks go to the track of the same name: one
  // uploaded now, or one already in the library. Each gets its own verdict.
  const stem = (name) => name.replace(/\.[^.]*$/, "").normalize("NFC").toLowerCase();
  const isSubtitles = (file) => /\.(srt|vtt)$/i.test(file.name);
  const attachSubtitles = (zone, file, audio) => {
    const { item, bar, verdict } = listItem(zone, file);
    const refuse = (text) => { item.classList.add("refused"); verdict.textContent = text; };
    pending += 1; setBusy();
    audio.then((asset) => {
      if (!asset) {
        refuse(interpolate(gettext("no audio track called %(name)s was accepted"), { name: `${stem(file.name)}.*` }, true));
        pending -= 1; setBusy();
        return;
      }
      const data = new FormData();
      data.append("file", file, file.name);
      const url = zone.querySelector("input[type=file]").dataset.subtitlesUrl.replace("/0/", `/${asset.id}/`);
      fetch(url, { method: "POST", body: data, headers: { "X-CSRFToken": csrf, Accept: "application/json" } })
        .then((response) => response.json().then((body) => ({ ok: response.status === 201, body })))
        .then(({ ok, body }) => {
          bar.value = 100;
          if (ok) { item.classList.add("ok"); verdict.textContent = body.verdict; }
          else refuse(body.error || gettext("refused"));
        })
        .catch(() => refuse(gettext("the upload was interrupted; try this file again")))
        .finally(() => { pending -= 1; setBusy(); });
    });
  };

  // How many videos the ticked avatars, audio tracks and written scripts make.
  const countLine = form.querySelector("[data-video-count]");
  const distinct = (name) => new Set(
    Array.from(form.querySelectorAll(`input[name=${name}]`))
      .filter((el) => el.type === "hidden" || el.checked).map((el) => el.value),
  ).size;
  function countVideos() {
    if (!countLine) return;
    const avatars = distinct("avatars");
    const audios = distinct("audios");
    const scripts = Array.from(form.querySelectorAll("textarea[name=scripts]")).filter((t) => t.value.trim()).length;
    const num = avatars * (audios + scripts);
    countLine.hidden = false;
    countLine.textContent = interpolate(ngettext(
      "%(num)s video will be made: %(avatars)s × (%(audios)s + %(scripts)s), avatars × (audio tracks + scripts).",
      "%(num)s videos will be made: %(avatars)s × (%(audios)s + %(scripts)s), avatars × (audio tracks + scripts).",
      num,
    ), { num, avatars, audios, scripts }, true);
  }
  form.addEventListener("change", countVideos);
  form.addEventListener("input", (e) => { if (e.target.name === "scripts") countVideos(); });

  // Scripts: add and remove text areas; numbers and labels follow.
  const scriptList = form.querySelector("[data-scripts]");
  const addScript = form.querySelector("[data-add-script]");
  const renumber = () => {
    const items = scriptList.querySelectorAll("[data-script]");
    items.forEach((li, i) => {
      const n = i + 1;
      li.querySelector("label").textContent = interpolate(gettext("Script %(number)s"), { number: n }, true);
      li.querySelector("label").htmlFor = `script_${n}`;
      li.querySelector("textarea").id = `script_${n}`;
      const remove = li.querySelector("[data-remove-script]");
      remove.hidden = items.length < 2;
      remove.setAttribute("aria-label", interpolate(gettext("Remove script %(number)s"), { number: n }, true));
    });
    countVideos();
  };
  if (scriptList && addScript) {
    addScript.hidden = false;
    addScript.addEventListener("click", () => {
      const first = scriptList.querySelector("[data-script]");
      const copy = first.cloneNode(true);
      copy.querySelector("textarea").value = "";
      scriptList.append(copy);
      renumber();
      copy.querySelector("textarea").focus();
    });
    scriptList.addEventListener("click", (e) => {
      const remove = e.target.closest("[data-remove-script]");
      if (!remove) return;
      remove.closest("[data-script]").remove();
      renumber();
      addScript.focus();
    });
    renumber();
  }

  // Rate and pitch only where the chosen voice has them.
  const voice = form.querySelector("select[name=voice]");
  const showSettings = () => {
    const option = voice.selectedOptions[0];
    ["rate", "pitch"].forEach((name) => {
      const field = form.querySelector(`input[name=${name}]`);
      if (!field) return;
      const has = !option || option.dataset[name] !== "0";
      field.closest(".field").hidden = !has;
      if (!has) field.value = "1";
    });
  };
  if (voice) { voice.addEventListener("change", showSettings); showSettings(); }

  form.querySelectorAll("[data-uploader]").forEach((zone) => {
    const input = zone.querySelector("input[type=file]");
    const take = (files) => {
      const all = Array.from(files);
      const uploads = {};
      all.filter((f) => !isSubtitles(f)).forEach((f) => { uploads[stem(f.name)] = uploadOne(zone, f); });
      all.filter(isSubtitles).forEach((f) => {
        let audio = uploads[stem(f.name)];
        if (!audio) {
          const known = Array.from(form.querySelectorAll("input[name=audios][data-name]"))
            .find((box) => stem(box.dataset.name) === stem(f.name));
          audio = Promise.resolve(known ? { id: known.value } : null);
        }
        if (zone.dataset.uploader === "audio") attachSubtitles(zone, f, audio);
        else uploadOne(zone, f);
      });
      input.value = "";
    };
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
  countVideos();
})();
