// A bot that plays the arena: queues, answers chooseMove within the deadline, re-queues
// after each match until it has played the matches it was asked to. The types, IArenaServer,
// IArenaClient, Arena.ServerProxy and Arena.Bind come from Arena.g.cs, generated from the
// demo's TypeScript contract (demo/api.ts) by volley-codegen.

using System;
using System.Collections.Generic;
using System.Threading;
using System.Threading.Tasks;
using Volley;

namespace Volley.Sample;

public sealed class ArenaBot : IArenaClient
{
    readonly string _name;
    readonly int _matches;
    readonly Action<string> _log;
    readonly Random _random = new();
    readonly TaskCompletionSource<bool> _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
    VolleyClient _client = null!;
    IArenaServer _server = null!;
    public int Played { get; private set; }
    public int Won { get; private set; }
    public int MovesMade;

    public ArenaBot(string name, int matches, Action<string> log)
    {
        _name = name;
        _matches = matches;
        _log = log;
    }

    /// <summary>Connects, plays `matches` matches, returns the final standings.</summary>
    public async Task<Standing[]> PlayAsync(string url, TimeSpan timeout)
    {
        var opts = new VolleyClientOptions { Token = _name, Converters = Arena.Converters() };
        _client = await VolleyClient.ConnectAsync(url, opts, c => Arena.Bind(c, this));
        _server = new Arena.ServerProxy(_client);
        _log($"{_name}: connected as {(await _server.Whoami()).Uid}, {(await _server.Queue()).Waiting} waiting");
        try
        {
            if (await Task.WhenAny(_done.Task, Task.Delay(timeout)) != _done.Task)
                throw new TimeoutException($"{_name}: played {Played} of {_matches} matches in {timeout}");
            return await _server.Leaderboard(10);
        }
        finally
        {
            await _client.CloseAsync();
        }
    }

    public async Task<Move> ChooseMove(RoundInfo info, CancellationToken ct)
    {
        await Task.Delay(_random.Next(0, 100), ct); // think
        var move = (Move)_random.Next(3);
        Interlocked.Increment(ref MovesMade);
        _log($"{_name}: match {info.MatchId} round {info.Round}/{info.Rounds} → {move}");
        return move;
    }

    public void MatchStart(MatchStartInfo info) => _log($"{_name}: match {info.MatchId} vs {string.Join(",", Array.FindAll(info.Players, p => p != _name))}");

    public void RoundResult(RoundResult r) => _log($"{_name}: round {r.Round}: {(r.Winner == null ? "draw" : r.Winner == _name ? "won" : "lost")}");

    public void MatchEnd(MatchEnd end)
    {
        Played++;
        if (end.Winner == _name) Won++;
        _log($"{_name}: match {end.MatchId} {(end.Winner == _name ? "WON" : end.Winner == null ? "drawn" : "lost")} ({Played}/{_matches})");
        if (Played >= _matches) _done.TrySetResult(true);
        else _ = _server.Queue().ContinueWith(t => _log($"{_name}: queue failed: {t.Exception?.GetBaseException().Message}"), TaskContinuationOptions.OnlyOnFaulted);
    }

    public void LeaderboardChanged(Standing[] top) { }
}
