// Local media: devices, the camera and microphone, and a microphone level meter.

/** Open camera and/or microphone; a missing or refused device yields null for that kind. */
export async function openMedia(cameraId, micId, wantVideo, wantAudio) {
  const result = { audio: null, video: null, error: null };
  const constraints = {
    audio: wantAudio ? {
      deviceId: micId ? { exact: micId } : undefined,
      echoCancellation: true,
      noiseSuppression: true,
      autoGainControl: true,
    } : false,
    video: wantVideo ? {
      deviceId: cameraId ? { exact: cameraId } : undefined,
      width: { ideal: 1280 },
      height: { ideal: 720 },
      frameRate: { ideal: 25, max: 30 },
    } : false,
  };
  if (!constraints.audio && !constraints.video) {
    return result;
  }
  try {
    const stream = await navigator.mediaDevices.getUserMedia(constraints);
    result.audio = stream.getAudioTracks()[0] || null;
    result.video = stream.getVideoTracks()[0] || null;
    return result;
  } catch (error) {
    result.error = error;
  }
  // One device may be the problem: try each kind alone.
  for (const kind of ["audio", "video"]) {
    if (!constraints[kind]) {
      continue;
    }
    try {
      const single = {};
      single[kind] = constraints[kind];
      const stream = await navigator.mediaDevices.getUserMedia(single);
      result[kind] = (kind === "audio" ? stream.getAudioTracks() : stream.getVideoTracks())[0] || null;
    } catch (error) {
      result.error = error;
    }
  }
  return result;
}

export async function openCamera(cameraId) {
  const opened = await openMedia(cameraId, null, true, false);
  if (!opened.video) {
    throw opened.error || new Error("no camera");
  }
  return opened.video;
}

/** Cameras and microphones, once the browser lets us see their names. */
export async function listDevices() {
  const devices = await navigator.mediaDevices.enumerateDevices();
  return {
    cameras: devices.filter(function (d) { return d.kind === "videoinput"; }),
    microphones: devices.filter(function (d) { return d.kind === "audioinput"; }),
  };
}

/** Level of a microphone track, 0..1, read with a WebAudio AnalyserNode. */
export class LevelMeter {
  constructor(onLevel) {
    this.onLevel = onLevel;
    this.context = null;
    this.source = null;
    this.analyser = null;
    this.timer = null;
  }

  attach(track) {
    this.detach();
    if (!track) {
      this.onLevel(0);
      return;
    }
    const AudioContextClass = window.AudioContext || window.webkitAudioContext;
    if (!this.context) {
      this.context = new AudioContextClass();
    }
    this.source = this.context.createMediaStreamSource(new MediaStream([track]));
    this.analyser = this.context.createAnalyser();
    this.analyser.fftSize = 1024;
    this.source.connect(this.analyser);
    const samples = new Float32Array(this.analyser.fftSize);
    const self = this;
    this.timer = setInterval(function () {
      if (!self.analyser) {
        return;
      }
      self.analyser.getFloatTimeDomainData(samples);
      let sum = 0;
      for (let i = 0; i < samples.length; i += 1) {
        sum += samples[i] * samples[i];
      }
      const rms = Math.sqrt(sum / samples.length);
      // Map -60..0 dBFS onto 0..1: speech sits around the middle.
      const db = rms > 0 ? 20 * Math.log10(rms) : -100;
      self.onLevel(Math.max(0, Math.min(1, (db + 60) / 60)));
    }, 100);
    this.resume();
  }

  /** Browsers start audio only after a user gesture: call this from one. */
  resume() {
    if (this.context && this.context.state === "suspended") {
      this.context.resume().catch(function () {});
    }
  }

  detach() {
    if (this.timer) {
      clearInterval(this.timer);
      this.timer = null;
    }
    if (this.source) {
      this.source.disconnect();
      this.source = null;
    }
    this.analyser = null;
  }

  close() {
    this.detach();
    if (this.context) {
      this.context.close().catch(function () {});
      this.context = null;
    }
  }
}

/** Resolves when the connection has gathered its ICE candidates (aiortc takes no trickled ones). */
export function iceGathered(pc, timeoutMs) {
  if (pc.iceGatheringState === "complete") {
    return Promise.resolve();
  }
  return new Promise(function (resolve) {
    const timer = setTimeout(done, timeoutMs || 3000);
    function check() {
      if (pc.iceGatheringState === "complete") {
        done();
      }
    }
    function done() {
      clearTimeout(timer);
      pc.removeEventListener("icegatheringstatechange", check);
      resolve();
    }
    pc.addEventListener("icegatheringstatechange", check);
  });
}
