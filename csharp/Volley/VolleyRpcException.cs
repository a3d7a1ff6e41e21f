// The one exception type of calls: a code string (ErrorCodes or the app's own), a message,
// and the error's data as decoded from the wire.

#nullable enable
using System;
using System.Collections.Generic;

namespace Volley
{
    public sealed class VolleyRpcException : Exception
    {
        /// <summary>One of <see cref="ErrorCodes"/>, or an application-defined code.</summary>
        public string Code { get; }

        /// <summary>
        /// The error map's <c>data</c> (decoded wire value: maps are Dictionary&lt;string, object?&gt;),
        /// or null. Named ErrorData because Exception.Data is already an IDictionary.
        /// </summary>
        public object? ErrorData { get; }

        public VolleyRpcException(string code, string? message = null, object? data = null, Exception? inner = null)
            : base(message ?? code, inner)
        {
            Code = code;
            ErrorData = data;
        }

        /// <summary>The wire form: {code, message, data?}.</summary>
        public Dictionary<string, object?> ToWire()
        {
            var m = new Dictionary<string, object?> { ["code"] = Code, ["message"] = Message };
            if (ErrorData != null) m["data"] = ErrorData;
            return m;
        }

        internal static VolleyRpcException FromWire(object? error)
        {
            if (error is Dictionary<string, object?> m && m.TryGetValue("code", out var c) && c is string code)
            {
                m.TryGetValue("message", out var msg);
                m.TryGetValue("data", out var data);
                return new VolleyRpcException(code, msg as string ?? code, data);
            }
            return new VolleyRpcException(ErrorCodes.ProtocolError, "malformed error in a response", error);
        }

        public override string ToString() => $"VolleyRpcException {Code}: {Message}";
    }
}
