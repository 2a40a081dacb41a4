# Sourced by bench/run_server_load.sh and bench/run_cluster_load.sh: queue_load_jobs BASE WORK
# posts 8 jobs of 1024² × 2 to BASE (the workers stay busy through the run) and writes WORK/mix.lua,
# the wrk script alternating a history page and the first job's status.
queue_load_jobs() {
    local base=$1 work=$2 i id
    for i in $(seq 8); do
        curl -sf -X POST "$base/api/v1/generations" \
            -d "{\"prompt\":\"load $i\",\"width\":1024,\"height\":1024,\"batch_size\":2}" > "$work/job$i.json"
    done
    id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$work/job1.json")
    cat > "$work/mix.lua" <<LUA
local n = 0
request = function()
  n = n + 1
  if n % 2 == 0 then return wrk.format("GET", "/api/v1/history?page=1&per_page=24") end
  return wrk.format("GET", "/api/v1/generations/$id")
end
LUA
}
