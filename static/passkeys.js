// Porter's passkeys: the browser's half of the WebAuthn ceremonies.
//
// A form marked `data-passkey` ("register", "sign-in" or "verify") asks
// the server for a challenge (POST to its `data-begin`, with the page's CSRF
// token in the X-CSRFToken header), hands it to navigator.credentials, puts
// the answer in its hidden `passkey_credential` field and submits itself:
// the server checks it and answers like any form. On the login page, where
// the browser offers it, passkeys are also suggested in the username field
// (conditional UI). A file of its own: the CSP allows no inline script.
(function () {
  "use strict";

  if (!window.PublicKeyCredential) {
    document.querySelectorAll("form[data-passkey]").forEach(function (form) {
      form.hidden = true;
    });
    return;
  }

  function toBytes(text) {
    var base64 = text.replace(/-/g, "+").replace(/_/g, "/");
    while (base64.length % 4) base64 += "=";
    var binary = atob(base64);
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytes.buffer;
  }

  function toText(buffer) {
    var bytes = new Uint8Array(buffer);
    var binary = "";
    for (var i = 0; i < bytes.length; i++) binary += String.fromCharCode(bytes[i]);
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  // The server's JSON has nulls for options it leaves out; browsers want
  // them absent.
  function withoutNulls(value) {
    if (Array.isArray(value)) return value.map(withoutNulls);
    if (value && typeof value === "object") {
      var out = {};
      Object.keys(value).forEach(function (key) {
        if (value[key] !== null) out[key] = withoutNulls(value[key]);
      });
      return out;
    }
    return value;
  }

  async function begin(form) {
    var token = form.querySelector("input[name=csrf_token]").value;
    var response = await fetch(form.dataset.begin, {
      method: "POST",
      headers: { "X-CSRFToken": token },
      credentials: "same-origin",
    });
    if (response.redirected) {
      // Sent to /sudo (or to sign in): go there, and come back.
      window.location = response.url;
      return null;
    }
    if (!response.ok) throw new Error("the server answered " + response.status);
    return withoutNulls(await response.json()).publicKey;
  }

  function creationOptions(options) {
    options.challenge = toBytes(options.challenge);
    options.user.id = toBytes(options.user.id);
    (options.excludeCredentials || []).forEach(function (c) { c.id = toBytes(c.id); });
    return options;
  }

  function requestOptions(options) {
    options.challenge = toBytes(options.challenge);
    (options.allowCredentials || []).forEach(function (c) { c.id = toBytes(c.id); });
    return options;
  }

  function registration(credential) {
    var response = credential.response;
    return {
      id: credential.id,
      rawId: toText(credential.rawId),
      type: credential.type,
      response: {
        attestationObject: toText(response.attestationObject),
        clientDataJSON: toText(response.clientDataJSON),
        transports: response.getTransports ? response.getTransports() : [],
      },
      extensions: credential.getClientExtensionResults(),
    };
  }

  function assertion(credential) {
    var response = credential.response;
    return {
      id: credential.id,
      rawId: toText(credential.rawId),
      type: credential.type,
      response: {
        authenticatorData: toText(response.authenticatorData),
        clientDataJSON: toText(response.clientDataJSON),
        signature: toText(response.signature),
        userHandle: response.userHandle ? toText(response.userHandle) : null,
      },
      extensions: credential.getClientExtensionResults(),
    };
  }

  function answer(form, json) {
    form.querySelector("input[name=passkey_credential]").value = JSON.stringify(json);
    HTMLFormElement.prototype.submit.call(form);
  }

  function showError(form, error) {
    var place = form.querySelector("[data-passkey-error]");
    if (error && error.name === "AbortError") return;
    if (place) {
      place.textContent = "The passkey did not work" +
        (error && error.name === "NotAllowedError" ? ": it was cancelled or timed out." : ".");
      place.hidden = false;
    }
  }

  var conditional = null;

  async function run(form, mediation) {
    var options = await begin(form);
    if (!options) return;
    var kind = form.dataset.passkey;
    if (kind === "register") {
      answer(form, registration(await navigator.credentials.create({
        publicKey: creationOptions(options),
      })));
      return;
    }
    var request = { publicKey: requestOptions(options) };
    if (mediation) {
      conditional = new AbortController();
      request.mediation = mediation;
      request.signal = conditional.signal;
    }
    answer(form, assertion(await navigator.credentials.get(request)));
  }

  document.querySelectorAll("form[data-passkey]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (conditional) conditional.abort();
      conditional = null;
      run(form, null).catch(function (error) { showError(form, error); });
    });
  });

  var signIn = document.querySelector("form[data-passkey=sign-in]");
  if (signIn && PublicKeyCredential.isConditionalMediationAvailable) {
    PublicKeyCredential.isConditionalMediationAvailable().then(function (available) {
      if (available) {
        // Unasked for: a failure here is not shown (the button still works).
        run(signIn, "conditional").catch(function () {});
      }
    });
  }
})();
