// The signaling connection: socket.io with a single-use join token, every event with an ack.

import { io } from "/vendor/socket.io.esm.min.js";

export class SignalingError extends Error {
  constructor(code, message) {
    super(message || code);
    this.code = code;
  }
}

/** Ask the web server for a fresh join token (the session cookie proves who we are). */
export async function fetchJoinToken(meetingId, csrfToken) {
  let response;
  try {
    response = await fetch("/api/meetings/" + encodeURIComponent(meetingId) + "/join-token", {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRF-Token": csrfToken, "Content-Type": "application/json" },
      body: "{}",
      cache: "no-store",
    });
  } catch (error) {
    throw new SignalingError("network", String(error));
  }
  let body = null;
  try {
    body = await response.json();
  } catch (error) {
    body = null;
  }
  if (!response.ok || !body || typeof body.token !== "string") {
    const code = body && body.error ? body.error.code : "http_" + response.status;
    const message = body && body.error ? body.error.message : response.statusText;
    // 401: the login session has ended; 403/404: no longer allowed. Retrying will not help.
    const fatal = response.status === 401 || response.status === 403 || response.status === 404;
    const error = new SignalingError(code, message);
    error.status = response.status;
    error.fatal = fatal;
    throw error;
  }
  return body.token;
}

export class Signaling {
  constructor(socket) {
    this.socket = socket;
  }

  /** Connect with a join token; resolves once the server has accepted the token. */
  static connect(token, timeoutMs) {
    const limit = timeoutMs || 10000;
    const socket = io({
      auth: { token: token },
      reconnection: false, // tokens are single-use: the page reconnects itself with a new one
      forceNew: true,
      timeout: limit,
    });
    return new Promise(function (resolve, reject) {
      const timer = setTimeout(function () {
        socket.close();
        reject(new SignalingError("timeout", "the server did not answer"));
      }, limit);
      socket.once("connect", function () {
        clearTimeout(timer);
        resolve(new Signaling(socket));
      });
      socket.once("connect_error", function (error) {
        clearTimeout(timer);
        socket.close();
        const code = error && error.data && error.data.code ? error.data.code : "connect_failed";
        reject(new SignalingError(code, error ? error.message : ""));
      });
    });
  }

  get connected() {
    return this.socket.connected;
  }

  /** Emit an event and wait for its ack; a missing ack becomes {ok: false, error: {code: "timeout"}}. */
  call(event, data, timeoutMs) {
    const socket = this.socket;
    return new Promise(function (resolve) {
      if (!socket.connected) {
        resolve({ ok: false, error: { code: "disconnected", message: "not connected" } });
        return;
      }
      socket.timeout(timeoutMs || 15000).emit(event, data || {}, function (error, ack) {
        if (error) {
          resolve({ ok: false, error: { code: "timeout", message: "no answer from the server" } });
        } else if (!ack || typeof ack !== "object") {
          resolve({ ok: false, error: { code: "invalid", message: "malformed answer" } });
        } else {
          resolve(ack);
        }
      });
    });
  }

  on(event, handler) {
    this.socket.on(event, handler);
  }

  close() {
    this.socket.removeAllListeners();
    this.socket.close();
  }
}

/** Round trips of a few acks, in milliseconds (median). Any ack counts, even an error. */
export async function measureRoundTrip(signaling, count) {
  const times = [];
  for (let i = 0; i < (count || 3); i += 1) {
    const started = performance.now();
    const reply = await signaling.call("ping", {}, 5000);
    if (reply.error && (reply.error.code === "timeout" || reply.error.code === "disconnected")) {
      return null;
    }
    times.push(performance.now() - started);
  }
  times.sort(function (a, b) { return a - b; });
  return times[Math.floor(times.length / 2)];
}

/**
 * Route server events to ``owner``'s handlers while ``signal`` is still the owner's current
 * connection; ``after`` (optional) runs after each handled event. Shared by the room and the console.
 */
export function bindServerEvents(owner, signal, handlers, after) {
  Object.keys(handlers).forEach(function (event) {
    signal.on(event, function (data) {
      if (owner.signal !== signal || !data || typeof data !== "object") {
        return;
      }
      try {
        handlers[event].call(owner, data);
        if (after) {
          after.call(owner);
        }
      } catch (error) {
        console.error("handling " + event + " failed", error);
      }
    });
  });
}

/** Wait ``ms``, but let ``owner.wake()`` end the wait early (e.g. when the network is back). */
export function wakeablePause(owner, ms) {
  return new Promise(function (resolve) {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      owner.wake = null;
      resolve();
    }
    owner.wake = done;
  });
}
