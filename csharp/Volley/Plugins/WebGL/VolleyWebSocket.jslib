// The WebGL transport's JavaScript half (Unity links it into the player's build): the page's
// WebSocket, binaryType 'arraybuffer', driven from C# (Transport/WebGLTransport.cs) by
// DllImport("__Internal") calls, answering through the three callbacks C# registers once.
// Bytes cross in the Emscripten heap: an incoming message is copied into a _malloc'd block
// for the duration of the callback (C# copies it out); an outgoing one is copied out of
// HEAPU8 before send. HEAPU8 is read at each use: the heap may have grown (a new buffer).

var VolleyWebSocketLib = {
  $VolleyWs: {
    sockets: {},
    next: 1,
    onOpen: 0,
    onMessage: 0,
    onClose: 0,

    /** A JS string as a _malloc'd NUL-terminated UTF-8 block (the caller frees it). */
    str: function (s) {
      var n = lengthBytesUTF8(s) + 1;
      var p = _malloc(n);
      stringToUTF8(s, p, n);
      return p;
    },

    closed: function (id, code, reason) {
      if (!VolleyWs.sockets[id]) return;
      delete VolleyWs.sockets[id];
      var p = VolleyWs.str(reason || '');
      try {
        {{{ makeDynCall('viii', 'VolleyWs.onClose') }}}(id, code, p);
      } finally {
        _free(p);
      }
    },
  },

  /** Registers the C# callbacks: onOpen(id), onMessage(id, ptr, length, isText), onClose(id, code, reasonPtr). */
  VolleyWs_Init: function (onOpen, onMessage, onClose) {
    VolleyWs.onOpen = onOpen;
    VolleyWs.onMessage = onMessage;
    VolleyWs.onClose = onClose;
  },

  /** Opens a socket; returns its id (> 0). Failures, even immediate ones, arrive as onClose (1006 before onOpen). */
  VolleyWs_Connect: function (urlPtr, protocolsPtr) {
    var url = UTF8ToString(urlPtr);
    var protocols = UTF8ToString(protocolsPtr);
    var id = VolleyWs.next++;
    var ws;
    try {
      ws = protocols.length > 0 ? new WebSocket(url, protocols.split(' ')) : new WebSocket(url);
    } catch (e) {
      VolleyWs.sockets[id] = true;
      setTimeout(function () { VolleyWs.closed(id, 1006, String(e && e.message || e)); }, 0);
      return id;
    }
    ws.binaryType = 'arraybuffer';
    VolleyWs.sockets[id] = ws;
    ws.onopen = function () {
      if (VolleyWs.sockets[id] === ws) {{{ makeDynCall('vi', 'VolleyWs.onOpen') }}}(id);
    };
    ws.onmessage = function (e) {
      if (VolleyWs.sockets[id] !== ws) return;
      if (typeof e.data === 'string') {
        {{{ makeDynCall('viiii', 'VolleyWs.onMessage') }}}(id, 0, 0, 1);
        return;
      }
      var bytes = new Uint8Array(e.data);
      var p = _malloc(Math.max(bytes.length, 1));
      try {
        HEAPU8.set(bytes, p);
        {{{ makeDynCall('viiii', 'VolleyWs.onMessage') }}}(id, p, bytes.length, 0);
      } finally {
        _free(p);
      }
    };
    ws.onclose = function (e) {
      VolleyWs.closed(id, e.code, e.reason);
    };
    return id;
  },

  /** Sends bytes [ptr, ptr + length) as one binary message; 0, or -1 when the socket is not open. */
  VolleyWs_Send: function (id, ptr, length) {
    var ws = VolleyWs.sockets[id];
    if (!ws || ws === true || ws.readyState !== 1) return -1;
    ws.send(HEAPU8.slice(ptr, ptr + length));
    return 0;
  },

  /** Starts the close handshake (codes 1000 or 3000-4999 only, as browsers allow). */
  VolleyWs_Close: function (id, code, reasonPtr) {
    var ws = VolleyWs.sockets[id];
    if (!ws || ws === true) return;
    try {
      ws.close(code, UTF8ToString(reasonPtr));
    } catch (e) {
      ws.close();
    }
  },

  /** Cuts the socket now: onClose(1006) follows at once, whatever the browser does later. */
  VolleyWs_Abort: function (id) {
    var ws = VolleyWs.sockets[id];
    if (!ws) return;
    if (ws !== true) {
      ws.onopen = ws.onmessage = ws.onclose = null;
      try { ws.close(); } catch (e) {}
    }
    VolleyWs.closed(id, 1006, 'aborted');
  },
};

autoAddDeps(VolleyWebSocketLib, '$VolleyWs');
mergeInto(LibraryManager.library, VolleyWebSocketLib);
