// Error codes and close codes of the Volley wire (protocol/SPEC.md §3, §6; DECISIONS E).

#nullable enable
namespace Volley
{
    /// <summary>Error codes that cross the wire or are raised locally. Apps may use their own strings too.</summary>
    public static class ErrorCodes
    {
        public const string MethodNotFound = "METHOD_NOT_FOUND";
        public const string InvalidParams = "INVALID_PARAMS";
        public const string Timeout = "TIMEOUT";
        public const string Cancelled = "CANCELLED";
        public const string Disconnected = "DISCONNECTED";
        /// <summary>The server refused the login (HTTP 401/409/503 or close 4401/4409/4503): ErrorData has status or closeCode.</summary>
        public const string Refused = "REFUSED";
        public const string Unavailable = "UNAVAILABLE";
        public const string RateLimited = "RATE_LIMITED";
        public const string Overloaded = "OVERLOADED";
        public const string ProtocolError = "PROTOCOL_ERROR";
        public const string Internal = "INTERNAL";
    }

    /// <summary>WebSocket close codes Volley uses.</summary>
    public static class CloseCodes
    {
        public const int Normal = 1000;
        public const int GoingAway = 1001;
        public const int Abnormal = 1006;
        public const int MessageTooBig = 1009;
        public const int Replaced = 4000;
        public const int DuplicateLogin = 4001;
        public const int ProtocolError = 4002;
        public const int HeartbeatTimeout = 4008;
        public const int SlowReader = 4009;
        public const int Flooded = 4029;
        public const int Unauthorized = 4401;
        public const int DuplicateLoginRefused = 4409;
        public const int ShuttingDown = 4503;
        /// <summary>Used by the client for a socket it dropped itself (Drop(), tests).</summary>
        public const int Dropped = 4999;

        /// <summary>Closes after which reconnecting would not help (or was asked not to happen).</summary>
        public static bool IsFinal(int code) =>
            code == Normal || code == Replaced || code == DuplicateLogin || code == ProtocolError || code == Flooded
            || code == Unauthorized || code == DuplicateLoginRefused;

        /// <summary>Closes right after accept that mean "login refused" to clients that can't see HTTP statuses.</summary>
        public static bool IsRefusal(int code) => code == Unauthorized || code == DuplicateLoginRefused || code == ShuttingDown;
    }
}
