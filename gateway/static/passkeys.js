// Passkeys: hand the page's options to the browser, put its answer in the form, submit the form.
// The form itself (with its CSRF token) goes to the gateway as an ordinary POST.
"use strict";

(function () {
  const form = document.querySelector("form[data-passkey]");
  if (!form) {
    return;
  }
  const status = document.getElementById("passkey-status");
  const button = form.querySelector("button[type=submit]");
  const registering = form.dataset.passkey === "register";

  function say(message) {
    status.textContent = "";
    const line = document.createElement("p");
    line.className = "error";
    line.setAttribute("role", "alert");
    line.textContent = message;
    status.appendChild(line);
  }

  function toBytes(text) {
    const base64 = text.replace(/-/g, "+").replace(/_/g, "/");
    const padded = base64 + "===".slice((base64.length + 3) % 4);
    return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
  }

  function toText(buffer) {
    let binary = "";
    new Uint8Array(buffer).forEach((b) => {
      binary += String.fromCharCode(b);
    });
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function descriptors(list) {
    return (list || []).map((d) => Object.assign({}, d, { id: toBytes(d.id) }));
  }

  function creationOptions(o) {
    return Object.assign({}, o, {
      challenge: toBytes(o.challenge),
      user: Object.assign({}, o.user, { id: toBytes(o.user.id) }),
      excludeCredentials: descriptors(o.excludeCredentials),
    });
  }

  function requestOptions(o) {
    return Object.assign({}, o, {
      challenge: toBytes(o.challenge),
      allowCredentials: descriptors(o.allowCredentials),
    });
  }

  function answer(credential) {
    const r = credential.response;
    const response = { clientDataJSON: toText(r.clientDataJSON) };
    if (registering) {
      response.attestationObject = toText(r.attestationObject);
      response.transports = typeof r.getTransports === "function" ? r.getTransports() : [];
    } else {
      response.authenticatorData = toText(r.authenticatorData);
      response.signature = toText(r.signature);
      if (r.userHandle) {
        response.userHandle = toText(r.userHandle);
      }
    }
    return {
      id: credential.id,
      rawId: toText(credential.rawId),
      type: credential.type,
      response: response,
      authenticatorAttachment: credential.authenticatorAttachment || undefined,
      clientExtensionResults: credential.getClientExtensionResults(),
    };
  }

  // the page's language (data-words, from gateway.pages.script_words), English without it
  const words = form.dataset.words ? JSON.parse(form.dataset.words) : {};

  function problem(error) {
    if (error && error.name === "NotAllowedError") {
      return words.cancelled || "The passkey request was cancelled or ran out of time. Press the button to try " +
        "again, or choose another way.";
    }
    if (error && error.name === "InvalidStateError") {
      return words.taken || "This device or key already holds a passkey for your account here. Use another " +
        "one, or choose another way.";
    }
    if (error && error.name === "SecurityError") {
      return words.address || "Passkeys do not work at this address (they need the site's name, not a number " +
        "address). Choose another way.";
    }
    return words.failed || "The passkey could not be used here. Try again, or choose another way.";
  }

  if (!window.PublicKeyCredential || !navigator.credentials) {
    say(words.unsupported || "This browser cannot use passkeys. Choose another way below.");
    button.disabled = true;
    return;
  }

  let busy = false;
  // The button comes disabled: a click before this script ran would post the form without a
  // passkey. Enabled once the form is handled here.
  button.disabled = false;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (busy) {
      return;
    }
    const field = form.elements.namedItem("name");
    if (registering && field && form.dataset.taken) {
      // A name another passkey uses is refused before the authenticator makes anything, so no
      // passkey the gateway will not keep is left on the device.
      const name = field.value.split(/\s+/).filter(Boolean).join(" ").toLowerCase();
      if (JSON.parse(form.dataset.taken).includes(name)) {
        say(form.dataset.takenMessage);
        field.setAttribute("aria-invalid", "true");
        field.focus();
        return;
      }
      field.removeAttribute("aria-invalid");
    }
    busy = true;
    button.disabled = true;
    status.textContent = "";
    const options = JSON.parse(form.dataset.options);
    try {
      const credential = registering
        ? await navigator.credentials.create({ publicKey: creationOptions(options) })
        : await navigator.credentials.get({ publicKey: requestOptions(options) });
      form.elements.credential.value = JSON.stringify(answer(credential));
      form.submit();
    } catch (error) {
      say(problem(error));
      busy = false;
      button.disabled = false;
    }
  });
})();
