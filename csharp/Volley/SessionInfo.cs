// What the server says in `$session` (SPEC §5; DECISIONS C adds `limits`, SPEC §11 `features`).

#nullable enable
using System.Collections.Generic;

namespace Volley
{
    /// <summary>Receive limits of one side. The spec's defaults are a floor every receiver accepts.</summary>
    public sealed class VolleyLimits
    {
        public int MaxMessageBytes = 1024 * 1024;
        public int MaxMessagesPerFrame = 256;
        public int MaxMethodLength = 128;
        public int MaxParams = 32;
        public int MaxDepth = 32;
        public int MaxElements = 100_000;
        public int MaxIncomingPending = 1024;

        public VolleyLimits Clone() => (VolleyLimits)MemberwiseClone();

        public Dictionary<string, object?> ToWire() => new Dictionary<string, object?>
        {
            ["maxMessageBytes"] = MaxMessageBytes,
            ["maxMessagesPerFrame"] = MaxMessagesPerFrame,
            ["maxMethodLength"] = MaxMethodLength,
            ["maxParams"] = MaxParams,
            ["maxDepth"] = MaxDepth,
            ["maxElements"] = MaxElements,
            ["maxIncomingPending"] = MaxIncomingPending,
        };

        internal static bool SameAsDefaults(VolleyLimits l)
        {
            var d = new VolleyLimits();
            return l.MaxMessageBytes == d.MaxMessageBytes && l.MaxMessagesPerFrame == d.MaxMessagesPerFrame && l.MaxMethodLength == d.MaxMethodLength
                && l.MaxParams == d.MaxParams && l.MaxDepth == d.MaxDepth && l.MaxElements == d.MaxElements && l.MaxIncomingPending == d.MaxIncomingPending;
        }

        internal static VolleyLimits FromWire(object? wire, VolleyLimits fallback)
        {
            var l = fallback.Clone();
            if (!(wire is Dictionary<string, object?> m)) return l;
            l.MaxMessageBytes = Int(m, "maxMessageBytes", l.MaxMessageBytes);
            l.MaxMessagesPerFrame = Int(m, "maxMessagesPerFrame", l.MaxMessagesPerFrame);
            l.MaxMethodLength = Int(m, "maxMethodLength", l.MaxMethodLength);
            l.MaxParams = Int(m, "maxParams", l.MaxParams);
            l.MaxDepth = Int(m, "maxDepth", l.MaxDepth);
            l.MaxElements = Int(m, "maxElements", l.MaxElements);
            l.MaxIncomingPending = Int(m, "maxIncomingPending", l.MaxIncomingPending);
            return l;
        }

        internal static int Int(Dictionary<string, object?> m, string key, int fallback) =>
            m.TryGetValue(key, out var v) && v is long n && n > 0 && n <= int.MaxValue ? (int)n : fallback;
    }

    public sealed class SessionInfo
    {
        public string Sid = "";
        public bool Resumed;
        public int ResumeWindowMs;
        public int HeartbeatMs;
        /// <summary>What the server accepts: the client checks its calls against these.</summary>
        public VolleyLimits Limits = new VolleyLimits();
        /// <summary>The optional features the server supports (SPEC §11), e.g. "items"; empty from a 1.0 server.</summary>
        public string[] Features = System.Array.Empty<string>();

        internal static SessionInfo? FromWire(object? wire)
        {
            if (!(wire is Dictionary<string, object?> m)) return null;
            if (!(m.TryGetValue("sid", out var sid) && sid is string s)) return null;
            if (!(m.TryGetValue("resumed", out var r) && r is bool resumed)) return null;
            var info = new SessionInfo
            {
                Sid = s,
                Resumed = resumed,
                ResumeWindowMs = VolleyLimits.Int(m, "resumeWindowMs", 0),
                HeartbeatMs = VolleyLimits.Int(m, "heartbeatMs", 10_000),
            };
            m.TryGetValue("limits", out var limits);
            info.Limits = VolleyLimits.FromWire(limits, new VolleyLimits());
            // Today's servers announce only maxMessageBytes at the top level.
            info.Limits.MaxMessageBytes = VolleyLimits.Int(m, "maxMessageBytes", info.Limits.MaxMessageBytes);
            // Not a list: none. Names this client does not know are kept, and ignored (SPEC §11).
            if (m.TryGetValue("features", out var f) && f is object?[] names)
            {
                var known = new List<string>();
                foreach (var n in names)
                    if (n is string name) known.Add(name);
                info.Features = known.ToArray();
            }
            return info;
        }
    }
}
