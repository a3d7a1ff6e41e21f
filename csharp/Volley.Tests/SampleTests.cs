// The sample bot plays the demo's arena against the demo server (demo/server.ts), as CI runs it.

using System;
using System.Collections.Generic;
using System.Linq;
using System.Text.RegularExpressions;
using System.Threading.Tasks;
using Volley.Sample;
using Xunit;

namespace Volley.Tests;

public class SampleTests
{
    [Fact]
    public async Task Two_csharp_bots_play_the_demo_arena_to_the_end_of_their_matches()
    {
        await using var demo = await NodeServer.StartAsync(NodeServer.RepoRoot, "demo/server.ts", "",
            new Dictionary<string, string> { ["PORT"] = "0" }, new Regex(@"listening on http://localhost:(\d+)/"));
        var log = new List<string>();
        var bots = Enumerable.Range(1, 2).Select(i => new ArenaBot($"{T.Uid("cs")}", 2, l => { lock (log) log.Add(l); })).ToArray();
        var standings = await Task.WhenAll(bots.Select(b => b.PlayAsync(demo.Url, TimeSpan.FromSeconds(60))));
        Assert.All(bots, b => Assert.Equal(2, b.Played));
        Assert.All(bots, b => Assert.InRange(b.MovesMade, 4, 6)); // best of 3, two matches
        var top = standings.Last();
        foreach (var b in bots) Assert.Contains(top, s => s.Wins + s.Losses + s.Draws == 2);
    }
}
