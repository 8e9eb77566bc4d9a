"""The CI step (`czann action`, the GitHub/Forgejo action and the GitLab component): its inputs, the path
rule, the quality gate's inputs, workflow commands, annotations, the job summary and the step itself."""
