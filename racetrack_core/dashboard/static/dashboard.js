// Racetrack Dashboard: the few live parts. Every page works without this file; it adds
// copying to the clipboard, following logs and deployments as they happen, and sorting
// on change.
"use strict";

function copyButtons() {
  for (const button of document.querySelectorAll("button[data-copy]")) {
    button.addEventListener("click", async () => {
      const source = document.getElementById(button.dataset.copy);
      const label = button.textContent;
      try {
        await navigator.clipboard.writeText(source.textContent.trim());
        button.textContent = "Copied";
      } catch (error) {
        const range = document.createRange();
        range.selectNodeContents(source);
        window.getSelection().removeAllRanges();
        window.getSelection().addRange(range);
        button.textContent = "Press Ctrl+C";
      }
      setTimeout(() => { button.textContent = label; }, 2000);
    });
  }
}

function autoSubmit() {
  for (const control of document.querySelectorAll("[data-autosubmit]")) {
    control.addEventListener("change", () => control.form.requestSubmit());
  }
}

// Appends a text stream (a job's log as it is written) to a <pre>, until stopped.
function followLogs() {
  const log = document.querySelector("pre[data-follow]");
  const toggle = document.querySelector("button[data-follow-toggle]");
  const state = document.querySelector("[data-follow-state]");
  if (!log || !toggle) return;
  let controller = null;
  const atBottom = () => log.scrollTop + log.clientHeight >= log.scrollHeight - 8;

  async function start() {
    controller = new AbortController();
    toggle.textContent = "Stop following";
    state.textContent = "Following: new lines appear as the job writes them.";
    log.textContent = "";
    try {
      const answer = await fetch(log.dataset.follow, { signal: controller.signal });
      if (!answer.ok) throw new Error("the server answered " + answer.status);
      const reader = answer.body.getReader();
      const decoder = new TextDecoder();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        const stick = atBottom();
        log.append(decoder.decode(value, { stream: true }));
        if (stick) log.scrollTop = log.scrollHeight;
      }
      state.textContent = "The log stream ended.";
    } catch (error) {
      if (error.name !== "AbortError") state.textContent = "Following stopped: " + error.message;
    }
    toggle.textContent = "Follow";
    controller = null;
  }

  toggle.addEventListener("click", () => {
    if (controller) {
      controller.abort();
      state.textContent = "Stopped following.";
    } else {
      start();
    }
  });
  if (toggle.dataset.followStart === "yes") start();
}

// Refreshes a running deployment's phases, status and build log until it finishes.
function followDeployment() {
  const root = document.querySelector("[data-deployment]");
  if (!root) return;
  const phases = root.querySelector("[data-phases]");
  const status = root.querySelector("[data-status]");
  const log = root.querySelector("[data-build-log]");
  const error = root.querySelector("[data-error]");
  const note = root.querySelector("[data-live-note]");

  async function poll() {
    let finished = false;
    try {
      const answer = await fetch(root.dataset.deployment, { headers: { Accept: "application/json" } });
      if (!answer.ok) throw new Error("the server answered " + answer.status);
      const data = await answer.json();
      status.textContent = data.status_label;
      status.className = "status " + data.status;
      phases.replaceChildren(...data.phases.map((p) => {
        const item = document.createElement("li");
        item.textContent = p.phase + " — " + p.at;
        return item;
      }));
      const stick = log.scrollTop + log.clientHeight >= log.scrollHeight - 8;
      log.textContent = data.build_log || "(no build output yet)";
      if (stick) log.scrollTop = log.scrollHeight;
      if (data.error) {
        error.hidden = false;
        error.textContent = data.error;
      }
      finished = data.finished;
      note.textContent = finished ? "Finished." : "Updating every second while the deployment runs.";
      if (finished && data.job_url) {
        const link = root.querySelector("[data-job-link]");
        if (link) { link.href = data.job_url; link.hidden = false; }
      }
    } catch (problem) {
      note.textContent = "Could not refresh: " + problem.message + "; retrying.";
    }
    if (!finished) setTimeout(poll, 1000);
  }
  if (root.dataset.finished !== "yes") setTimeout(poll, 1000);
}

document.addEventListener("DOMContentLoaded", () => {
  copyButtons();
  autoSubmit();
  followLogs();
  followDeployment();
});
