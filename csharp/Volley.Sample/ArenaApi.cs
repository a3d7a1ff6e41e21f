// The demo's contract (demo/api.ts) in C#: the types, their wire converters, and the two
// interfaces with hand-written adapters. This is the "typed layer" Volley suggests for
// Unity/IL2CPP: no runtime code generation, no reflection over members; a few lines per
// method that a source generator could also write.

using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using Volley;
using Volley.Wire;

namespace Volley.Sample;

public enum Move { Rock, Paper, Scissors }

public sealed record RoundInfo(long MatchId, int Round, int Rounds, string[] Players, int DeadlineMs);
public sealed record RoundResult(long MatchId, int Round, Dictionary<string, string?> Moves, string? Winner, Dictionary<string, int> Score);
public sealed record MatchStart(long MatchId, string[] Players, int Rounds);
public sealed record MatchEnd(long MatchId, string? Winner, Dictionary<string, int> Score);
public sealed record Standing(string Uid, int Wins, int Losses, int Draws, int Points);

/// <summary>What clients may call on the server (demo/api.ts ArenaServer).</summary>
public interface IArenaServer
{
    Task<int> Queue(CancellationToken ct = default);
    Task LeaveQueue(CancellationToken ct = default);
    Task<Standing[]> Leaderboard(int limit = 10, CancellationToken ct = default);
    Task<string> WhoAmI(CancellationToken ct = default);
}

/// <summary>What the server calls and notifies on clients (demo/api.ts ArenaClient).</summary>
public interface IArenaClient
{
    Task<Move> ChooseMove(RoundInfo info, CancellationToken ct);
    void MatchStart(MatchStart info);
    void RoundResult(RoundResult result);
    void MatchEnd(MatchEnd end);
    void LeaderboardChanged(Standing[] top);
}

public static class Arena
{
    /// <summary>Wire converters of the arena's types (register once per client or on ValueConverters.Default).</summary>
    public static ValueConverters Converters()
    {
        var c = new ValueConverters();
        c.Register<Move>(m => m.ToString().ToLowerInvariant(), w => Enum.Parse<Move>((string)w!, ignoreCase: true));
        c.Register<RoundInfo>(_ => throw new NotSupportedException("server → client only"), w =>
        {
            var m = WireMap.Of(w);
            return new RoundInfo(m.Get<long>("matchId"), m.Get<int>("round"), m.Get<int>("rounds"), m.Get<string[]>("players"), m.Get<int>("deadlineMs"));
        });
        c.Register<RoundResult>(_ => throw new NotSupportedException(), w =>
        {
            var m = WireMap.Of(w);
            var moves = WireMap.Of(m["moves"]).ToDictionary(kv => kv.Key, kv => kv.Value as string);
            return new RoundResult(m.Get<long>("matchId"), m.Get<int>("round"), moves, m.Get<string?>("winner"), m.Get<Dictionary<string, int>>("score"));
        });
        c.Register<MatchStart>(_ => throw new NotSupportedException(), w =>
        {
            var m = WireMap.Of(w);
            return new MatchStart(m.Get<long>("matchId"), m.Get<string[]>("players"), m.Get<int>("rounds"));
        });
        c.Register<MatchEnd>(_ => throw new NotSupportedException(), w =>
        {
            var m = WireMap.Of(w);
            return new MatchEnd(m.Get<long>("matchId"), m.Get<string?>("winner"), m.Get<Dictionary<string, int>>("score"));
        });
        c.Register<Standing>(_ => throw new NotSupportedException(), w =>
        {
            var m = WireMap.Of(w);
            return new Standing(m.Get<string>("uid"), m.Get<int>("wins"), m.Get<int>("losses"), m.Get<int>("draws"), m.Get<int>("points"));
        });
        return c;
    }

    /// <summary>Typed proxy to the server: one line per method.</summary>
    public sealed class ServerProxy : IArenaServer
    {
        readonly VolleyClient _c;
        public ServerProxy(VolleyClient c) => _c = c;

        public async Task<int> Queue(CancellationToken ct = default) =>
            WireMap.Get<int>(await _c.CallAsync<Dictionary<string, object?>>("queue", null, ct), "waiting");
        public Task LeaveQueue(CancellationToken ct = default) => _c.CallAsync<object?>("leaveQueue", null, ct);
        public Task<Standing[]> Leaderboard(int limit = 10, CancellationToken ct = default) =>
            _c.CallAsync<Standing[]>("leaderboard", new object?[] { limit }, ct);
        public async Task<string> WhoAmI(CancellationToken ct = default) =>
            WireMap.Get<string>(await _c.CallAsync<Dictionary<string, object?>>("whoami", null, ct), "uid");
    }

    /// <summary>Registers an IArenaClient's methods as the client's handlers.</summary>
    public static void Bind(VolleyClient c, IArenaClient impl)
    {
        c.Handle<RoundInfo, Move>("chooseMove", impl.ChooseMove);
        c.On<MatchStart>("matchStart", impl.MatchStart);
        c.On<RoundResult>("roundResult", impl.RoundResult);
        c.On<MatchEnd>("matchEnd", impl.MatchEnd);
        c.On<Standing[]>("leaderboardChanged", impl.LeaderboardChanged);
    }
}
