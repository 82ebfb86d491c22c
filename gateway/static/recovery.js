// Recovery codes: "Copy all codes" and "Print" buttons, shown only when this script runs (the
// page works without it: a download link, a print stylesheet, and the codes on the page).
"use strict";

(function () {
  const list = document.querySelector("ol.recovery-codes");
  if (!list) {
    return;
  }
  const status = document.getElementById("recovery-copy-status");
  const copyButton = document.querySelector("button[data-recovery-copy]");
  // the page's language (data-words, from gateway.pages.script_words), English without it
  const words = copyButton && copyButton.dataset.words ? JSON.parse(copyButton.dataset.words) : {};
  const copied = (count) =>
    words.copied
      ? words.copied.replace("%(count)s", String(count))
      : "Copied all " + count + " codes to the clipboard.";
  const printButton = document.querySelector("button[data-recovery-print]");

  function codes() {
    return Array.from(list.querySelectorAll("code"), (code) => code.textContent.trim()).join("\n");
  }

  function say(message, failed) {
    status.textContent = message;
    status.classList.toggle("error", failed);
  }

  // Where the asynchronous clipboard is missing (a page not served over HTTPS), the selection
  // of a hidden text area is copied instead.
  function copyBySelection(text) {
    const area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "recovery-offscreen";
    document.body.appendChild(area);
    area.select();
    let copied = false;
    try {
      copied = document.execCommand("copy");
    } catch (err) {
      copied = false;
    }
    area.remove();
    copyButton.focus();
    return copied ? Promise.resolve() : Promise.reject(new Error("not copied"));
  }

  function copy(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text).catch(() => copyBySelection(text));
    }
    return copyBySelection(text);
  }

  const canCopy =
    (navigator.clipboard && window.isSecureContext) ||
    (typeof document.queryCommandSupported === "function" && document.queryCommandSupported("copy"));
  if (copyButton && status && canCopy) {
    copyButton.hidden = false;
    copyButton.addEventListener("click", () => {
      say("", false);
      copy(codes()).then(
        () => say(copied(list.children.length), false),
        () => say(words.not_copied || "The codes could not be copied. Select them and copy them yourself.", true),
      );
    });
  }

  if (printButton && typeof window.print === "function") {
    printButton.hidden = false;
    printButton.addEventListener("click", () => window.print());
  }
})();
