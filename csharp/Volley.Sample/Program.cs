// dotnet run --project csharp/Volley.Sample -- [ws://localhost:8080/] [bots=2] [matches=3]
// Start the demo server first (`npm start`). Exits 0 once every bot has played its matches.

using System;
using System.Linq;
using System.Threading.Tasks;
using Volley.Sample;

var url = args.Length > 0 ? args[0] : "ws://localhost:8080/";
var bots = args.Length > 1 ? int.Parse(args[1]) : 2;
var matches = args.Length > 2 ? int.Parse(args[2]) : 3;
var players = Enumerable.Range(1, bots).Select(i => new ArenaBot($"csbot{i}-{Environment.ProcessId % 10000}", matches, Console.WriteLine)).ToArray();
try
{
    var standings = await Task.WhenAll(players.Select(p => p.PlayAsync(url, TimeSpan.FromMinutes(2))));
    Console.WriteLine("leaderboard: " + string.Join(", ", standings.Last().Select(s => $"{s.Uid} {s.Points}pt")));
    return 0;
}
catch (Exception e)
{
    Console.Error.WriteLine(e.Message);
    return 1;
}
