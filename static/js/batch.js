// Live batch page: polls status.json and updates the bars, statuses and result grid in place
// (the results' player is player.js).
// Words come from the page's catalogue (gettext, ngettext, interpolate: /jsi18n/<lang>.js) or,
// for statuses, from the server (status_label); codes stay in classes and data attributes.
(() => {
  const root = document.querySelector("[data-status-url]");
  if (!root) return;
  const url = root.dataset.statusUrl;
  const finishedAtLoad = root.querySelector("[data-batch-finished]").textContent.trim();
  const totalAtLoad = Number(root.dataset.batchTotal);

  const setBar = (bar, percent) => {
    bar.setAttribute("aria-valuenow", String(percent));
    bar.querySelector("span").style.width = `${percent}%`;
  };

  // Screen readers hear the progress at sensible moments, not on every tick: each time another
  // quarter of the videos is finished, and once when the whole batch is. When the page reloads
  // (failures get their Retry buttons), the last words are said again after it.
  const live = document.createElement("p");
  live.className = "sr-only";
  live.setAttribute("aria-live", "polite");
  live.setAttribute("aria-atomic", "true");
  live.dataset.batchLive = "";
  root.append(live);
  const say = (text) => { live.textContent = text; };
  const carryKey = `heygem:announce:${window.location.pathname}`;
  try {
    const carried = window.sessionStorage.getItem(carryKey);
    if (carried) {
      window.sessionStorage.removeItem(carryKey);
      setTimeout(() => say(carried), 500);
    }
  } catch (err) { /* no session storage: nothing to say again */ }
  const quarter = (finished, total) => (total ? Math.floor((4 * finished) / total) : 0);
  let quarterSaid = quarter(Number(finishedAtLoad), totalAtLoad);
  let doneSaid = Number(finishedAtLoad) >= totalAtLoad;  // finished before anyone watched
  const announce = (data) => {
    if (data.finished >= data.total) {
      if (doneSaid) return;
      doneSaid = true;
      const ready = data.counts.succeeded || 0;
      say(ready === data.total
        ? interpolate(ngettext(
          "The batch is finished: the video is ready.",
          "The batch is finished: all %(num)s videos are ready.", data.total), { num: data.total }, true)
        : interpolate(ngettext(
          "The batch is finished: %(ready)s of %(total)s video is ready.",
          "The batch is finished: %(ready)s of %(total)s videos are ready.", data.total),
        { ready, total: data.total }, true));
      return;
    }
    const now = quarter(data.finished, data.total);
    if (now <= quarterSaid) return;
    quarterSaid = now;
    say(interpolate(ngettext(
      "%(finished)s of %(total)s video finished.",
      "%(finished)s of %(total)s videos finished.", data.total),
    { finished: data.finished, total: data.total }, true));
  };

  // A finished video's card, as the page writes it (templates/jobs/batch_detail.html), put
  // in its job's place so the player's Previous/Next (player.js) follow the jobs' order.
  const addResult = (output) => {
    const grid = root.querySelector("[data-results]");
    if (grid.querySelector(`[data-output="${output.id}"]`)) return;
    const fig = document.createElement("figure");
    fig.className = "result";
    fig.dataset.output = output.id;
    fig.dataset.number = output.number;
    const button = document.createElement("button");
    button.type = "button";
    button.className = "thumb";
    button.dataset.play = output.play;
    button.dataset.download = output.download;
    button.dataset.title = output.title;
    if (output.vtt) button.dataset.vtt = output.vtt;
    if (output.srt) button.dataset.srt = output.srt;
    button.setAttribute("aria-label", interpolate(gettext("Play %(name)s"), { name: output.name }, true));
    const img = document.createElement("img");
    img.src = output.thumbnail; img.alt = ""; img.width = 320;
    const sign = document.createElement("span");
    sign.className = "play-sign"; sign.setAttribute("aria-hidden", "true");
    button.append(img, sign);
    const caption = document.createElement("figcaption");
    const number = document.createElement("span");
    number.className = "job-number"; number.textContent = `#${output.number}`;
    caption.append(number, ` ${output.name}`, document.createElement("br"));
    const small = document.createElement("small");
    const seconds = interpolate(gettext("%(seconds)s s"), { seconds: output.duration.toFixed(1) }, true);
    small.textContent = `${seconds} · ${output.size}`;
    const link = document.createElement("a");
    link.href = output.download; link.textContent = gettext("Download"); link.setAttribute("download", "");
    caption.append(small, " ", link);
    if (output.srt) {
      const srt = document.createElement("a");
      srt.href = output.srt; srt.textContent = gettext("Subtitles (.srt)"); srt.setAttribute("download", "");
      caption.append(" · ", srt);
    }
    fig.append(button, caption);
    const after = [...grid.querySelectorAll("[data-number]")]
      .find((other) => Number(other.dataset.number) > output.number);
    grid.insertBefore(fig, after || null);
    root.querySelector("[data-results-empty]").hidden = true;
    document.dispatchEvent(new Event("results:added"));
  };

  const apply = (data) => {
    setBar(root.querySelector("[data-batch-progress]"), data.percent);
    const badge = root.querySelector("[data-batch-status]");
    badge.textContent = data.status_label; badge.className = `badge ${data.status}`;
    root.querySelector("[data-batch-finished]").textContent = data.finished;
    for (const job of data.jobs) {
      const row = root.querySelector(`[data-job="${job.id}"]`);
      if (!row) continue;
      setBar(row.querySelector(".progress"), job.percent);
      const status = row.querySelector("[data-status]");
      status.textContent = job.status_label; status.className = `badge ${job.status}`;
      row.querySelector("[data-error]").textContent = job.error;
      row.querySelector("[data-frames]").textContent = job.frames_total
        ? interpolate(
          ngettext("%(done)s / %(total)s frame", "%(done)s / %(total)s frames", job.frames_total),
          { done: job.frames_done, total: job.frames_total }, true)
        : "";
      row.querySelectorAll("[data-show-when]").forEach((el) => {
        el.hidden = !el.dataset.showWhen.split(" ").includes(job.status);
      });
      if (job.output) addResult(job.output);
    }
    announce(data);
    if (data.finished === data.total) {
      root.querySelectorAll("[data-cancel-batch]").forEach((el) => el.closest("form").remove());
      // Jobs that failed or were canceled while we watched get their Retry buttons.
      const unfinishedAtLoad = Number(finishedAtLoad) < totalAtLoad;
      if (unfinishedAtLoad && (data.counts.failed || data.counts.canceled)) {
        try { window.sessionStorage.setItem(carryKey, live.textContent); } catch (err) { /* none */ }
        window.location.reload();
      }
    }
    return data.finished < data.total;
  };

  const poll = async () => {
    let again = true;
    try {
      const response = await fetch(url, { headers: { Accept: "application/json" }, cache: "no-store" });
      if (response.ok) again = apply(await response.json());
    } catch (err) {
      // Network hiccup: try again on the next tick.
    }
    if (again) setTimeout(poll, 1500);
  };
  setTimeout(poll, 800);
})();
